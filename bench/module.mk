# bench/: benchmarks (make bench)
