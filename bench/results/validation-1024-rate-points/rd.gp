# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.
$mrt << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00576255 22.8575 0.659683
0.0112304 23.7707 0.710475
0.019951 24.6203 0.760214
EOD
$jpeg << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00571236 18.7065 0.524857
0.0111126 23.4197 0.672571
0.0196546 24.6243 0.74288
EOD
$webp << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0056485 23.5509 0.669893
0.0110802 24.8095 0.730522
0.0196459 25.838 0.780959
EOD
$avif << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00569435 22.749 0.643428
0.010964 24.9052 0.736042
0.0194542 26.2909 0.795664
EOD
$jxl << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00571839 22.539 0.640209
0.0111582 23.8722 0.70284
0.0196531 25.0141 0.757777
EOD
set terminal pngcairo size 1400,560 font ',11'
set output 'rd.png'
set multiplot layout 1,2 title 'mrt against classical codecs at the same bytes (mean over 9 images; classical: best downscale factor by MS-SSIM)'
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
