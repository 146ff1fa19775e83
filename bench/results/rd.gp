# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.
$jpeg << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00995551 20.4877 0.567855
0.0199382 22.8094 0.692549
EOD
$webp << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00971137 22.867 0.691413
0.0194092 24.0512 0.755439
EOD
$avif << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0099216 22.1297 0.652651
0.0198771 24.128 0.76836
EOD
$jxl << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00979953 22.2249 0.661052
0.0196398 23.0978 0.725771
EOD
set terminal pngcairo size 1400,560 font ',11'
set output 'rd.png'
set multiplot layout 1,2 title 'mrt against classical codecs at the same bytes (mean over 3 images; classical: best downscale factor by MS-SSIM)'
set grid
set key bottom right
set logscale x
set autoscale xfix
set xtics (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
set xlabel 'bits per pixel'
set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05
set ylabel 'PSNR-RGB (dB)'
plot $jpeg using 1:2 with linespoints lw 2 pt 7 title 'JPEG (libjpeg-turbo)', $webp using 1:2 with linespoints lw 2 pt 7 title 'WebP (libwebp)', $avif using 1:2 with linespoints lw 2 pt 7 title 'AVIF (libavif, aom)', $jxl using 1:2 with linespoints lw 2 pt 7 title 'JPEG XL (libjxl)'
set ylabel 'MS-SSIM (RGB)'
plot $jpeg using 1:3 with linespoints lw 2 pt 7 title 'JPEG (libjpeg-turbo)', $webp using 1:3 with linespoints lw 2 pt 7 title 'WebP (libwebp)', $avif using 1:3 with linespoints lw 2 pt 7 title 'AVIF (libavif, aom)', $jxl using 1:3 with linespoints lw 2 pt 7 title 'JPEG XL (libjxl)'
unset multiplot
