.PHONY: bench

# Extra flags: make bench BENCH_ARGS="--requests 20000"
bench:
	python bench/run.py $(BENCH_ARGS)
