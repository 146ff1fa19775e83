# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.
$mrt << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00596958 20.7838 0.646378
0.0123401 21.603 0.699986
0.0206418 22.3492 0.760279
EOD
$jpeg << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0122791 20.5019 0.613572
0.0204781 21.687 0.700184
EOD
$webp << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00591532 20.7491 0.630355
0.0121816 21.9237 0.709917
0.0204247 22.7774 0.761787
EOD
$avif << EOD
# bpp psnr-rgb ms-ssim-rgb
0.0121875 21.3572 0.675463
0.0203035 22.7448 0.756714
EOD
$jxl << EOD
# bpp psnr-rgb ms-ssim-rgb
0.00592465 19.5985 0.591506
0.0122138 21.1889 0.673015
0.02049 22.0881 0.730814
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
