# SPDX-License-Identifier: Apache-2.0
# bench_peers_chart.gnuplot: clustered bars of one bench_peers.sh pivot table.
# gnuplot -e "datafile='X.dat'; outfile='X.png'; kind='throughput|metadata'; subtitle='...'"
# The data file: a header "case SYSTEM..." then one row per case, "-" where not run.
if (!exists("kind")) kind = 'throughput'
if (!exists("subtitle")) subtitle = ''

set terminal pngcairo size 1400,700 noenhanced font ',10'
set output outfile
set datafile missing '-'
set key below horizontal
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -35 scale 0
set grid ytics
set logscale y
if (kind eq 'metadata') {
    set title 'tierfs vs peers: listing and find (lower is better) - '.subtitle
    set ylabel 'wall time, s (log)'
} else {
    set title 'tierfs vs peers and ceilings: throughput (higher is better) - '.subtitle
    set ylabel 'MB/s (log)'
}
ncols = int(system("head -n 1 '".datafile."' | wc -w"))
plot for [i=2:ncols] datafile using i:xtic(1) title columnheader(i)
