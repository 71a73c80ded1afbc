# The two user commands (see README.md):
#   make demo   install what is needed, build, run the main job on the bundled default
#   make test   install what is needed, build, run every test (plain, ASan+UBSan, short fuzz)
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 20

.PHONY: demo test deps deps-test build build-asan build-fuzz fuzz test-plain test-asan clean

demo: deps build
	./scripts/demo.sh

test: deps-test test-plain test-asan fuzz

deps:
	./scripts/install-deps.sh
	-npm ci --prefix web --prefer-offline --no-audit --no-fund --loglevel=error  # abcjs for the web page (it works without)

deps-test:
	./scripts/install-deps.sh --test
	-npm ci --prefix web --prefer-offline --no-audit --no-fund --loglevel=error  # abcjs for the web page (it works without)

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j $(JOBS)

build-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMELODIST_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)

build-fuzz:
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMELODIST_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS)

test-plain: build
	cd build && ctest --output-on-failure -j $(JOBS)

# Under the sanitizers, the tests labelled 'slow' (whole-corpus oracles, numerics at size) are skipped.
test-asan: build-asan
	cd build-asan && MELODIST_SANITIZED=1 ctest --output-on-failure -j $(JOBS) -LE slow

fuzz: build-fuzz
	./fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz
