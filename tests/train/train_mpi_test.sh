#!/bin/sh
# mpirun -np 2 melodist train equals one process with the same global batch, step for step, within
# floating-point tolerance (the gradient sums are associated differently).
#   train_mpi_test.sh MELODIST SOURCE_DIR
set -eu
melodist=$1 src=$2
command -v mpirun > /dev/null || { echo "SKIP: mpirun not installed (openmpi-bin)"; exit 77; }
[ -z "${MELODIST_SANITIZED:-}" ] || { echo "SKIP: OpenMPI is not run under the sanitizers"; exit 77; }
. "$src/tests/lib/common.sh"
fresh_work train_mpi
tiny_train_config mpi.json run 2 25 3e-3 5 25 1 1
"$melodist" train --config mpi.json --out one 2> one.err || { cat one.err; exit 1; }
mpirun --allow-run-as-root --oversubscribe -np 2 "$melodist" train --config mpi.json --out two > two.out 2> two.err ||
    { cat two.out two.err; exit 1; }
grep -q "2 processes" two.err || { cat two.err; echo "FAIL: mpirun did not form one job of 2 processes"; exit 1; }
losses one/train_log.jsonl > one.loss
losses two/train_log.jsonl > two.loss
sed -n 's/.*"step": \([0-9]*\),.*"valid_loss": \([0-9.]*\).*/\1 \2/p' one/train_log.jsonl > one.valid
sed -n 's/.*"step": \([0-9]*\),.*"valid_loss": \([0-9.]*\).*/\1 \2/p' two/train_log.jsonl > two.valid
paste one.loss two.loss | awk '
    { if ($1 != $3) { print "FAIL: step mismatch"; bad = 1 }
      d = ($2 - $4) / $2; if (d < 0) d = -d; if (d > worst) worst = d; n++ }
    END { printf "np 2 vs 1 process: %d steps, worst relative loss difference %.2e\n", n, worst
          exit bad || n != 25 || worst > 1e-4 }'
paste one.valid two.valid | awk '{ d = ($2 - $4) / $2; if (d < 0) d = -d; if (d > w) w = d }
    END { printf "validation losses: worst relative difference %.2e\n", w; exit w > 1e-4 }'
