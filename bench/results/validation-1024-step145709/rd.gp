# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.
$mrt << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00574577 22.9393 0.662043
0.0112667 23.8634 0.713716
0.0198986 24.7076 0.762929
EOD
$jpeg << EOD
# bpp psnr-rgb ms-ssim-rgb
0.011135 23.4244 0.672652
0.01961 24.6223 0.742961
EOD
$webp << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00564914 23.5556 0.670219
0.0111055 24.8107 0.730873
0.0196357 25.8353 0.781005
EOD
$avif << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00567058 22.7241 0.642879
0.0110817 24.94 0.737463
0.0194475 26.2535 0.795614
EOD
$jxl << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00571944 22.5686 0.640312
0.0111607 23.876 0.703347
0.0195902 25.0377 0.758043
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
