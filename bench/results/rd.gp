# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.
$mrt << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00618829 19.1857 0.576671
0.0102505 19.8415 0.623187
0.0203196 20.0067 0.639166
EOD
$jpeg << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0101759 19.8879 0.568318
0.0200806 21.6174 0.695394
EOD
$webp << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00608148 20.8315 0.633159
0.0100454 21.658 0.68757
0.0200873 22.7775 0.758722
EOD
$avif << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0100767 20.8256 0.632768
0.0199102 22.735 0.753105
EOD
$jxl << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00611538 19.8258 0.59374
0.0101157 20.9889 0.652647
0.0200814 22.0661 0.726988
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
