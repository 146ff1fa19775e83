# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.
$mrt << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00691308 19.4433 0.597348
0.0118764 20.0612 0.646205
0.0205968 22.1521 0.751741
EOD
$jpeg << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0118162 20.4488 0.607262
0.0204408 21.685 0.700113
EOD
$webp << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00679864 21.0213 0.643694
0.0116831 21.8658 0.704717
0.0203467 22.7683 0.760911
EOD
$avif << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00685967 18.4308 0.492364
0.011673 21.2707 0.667364
0.0200221 22.7122 0.754667
EOD
$jxl << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00683763 20.1399 0.607941
0.0117594 21.1389 0.669171
0.0203942 22.073 0.730517
EOD
set terminal pngcairo size 1400,560 font ',11'
set output 'rd.png'
set multiplot layout 1,2 title 'mrt against classical codecs at the same bytes (mean over 24 images; classical: best downscale factor by MS-SSIM)'
set grid
set key bottom right
set logscale x
set autoscale xfix
set xtics (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
set xlabel 'bits per pixel'
set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05
set ylabel 'PSNR-RGB (dB)'
plot $mrt using 1:2 with linespoints lw 2 pt 7 title 'mrt (ours)', $jpeg using 1:2 with linespoints lw 2 pt 7 title 'JPEG (libjpeg-turbo)', $webp using 1:2 with linespoints lw 2 pt 7 title 'WebP (libwebp)', $avif using 1:2 with linespoints lw 2 pt 7 title 'AVIF (libavif, aom)', $jxl using 1:2 with linespoints lw 2 pt 7 title 'JPEG XL (libjxl)'
set ylabel 'MS-SSIM (RGB)'
plot $mrt using 1:3 with linespoints lw 2 pt 7 title 'mrt (ours)', $jpeg using 1:3 with linespoints lw 2 pt 7 title 'JPEG (libjpeg-turbo)', $webp using 1:3 with linespoints lw 2 pt 7 title 'WebP (libwebp)', $avif using 1:3 with linespoints lw 2 pt 7 title 'AVIF (libavif, aom)', $jxl using 1:3 with linespoints lw 2 pt 7 title 'JPEG XL (libjxl)'
unset multiplot
