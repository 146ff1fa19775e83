# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.
$mrt << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00684526 19.8567 0.631273
0.0117204 20.502 0.683481
EOD
$jpeg << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0116594 20.4262 0.604605
EOD
$webp << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00674778 21.0089 0.642592
0.0115831 21.8534 0.703552
EOD
$avif << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0115306 21.2411 0.665087
EOD
$jxl << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00676812 20.1309 0.60619
0.0116196 21.1232 0.667938
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
