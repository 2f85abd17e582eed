.PHONY: demo test bench
demo:
	scripts/demo.sh
test:
	scripts/test.sh
bench:
	scripts/install.sh
	for b in bench/bench_*.py; do .venv/bin/python $$b || exit 1; done
