# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.
$mrt << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00591956 20.8945 0.652763
0.0121816 21.7997 0.709529
EOD
$jpeg << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0121214 20.471 0.61054
EOD
$webp << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00582886 20.7256 0.628991
0.0120053 21.9081 0.708887
EOD
$avif << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0119926 21.3104 0.672925
EOD
$jxl << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00585005 19.569 0.590104
0.0120188 21.1543 0.671718
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
