#!/bin/bash
# Short runs of every protocol (R, C, D, S on ML-100K; M on a synthetic world) with one mtrec
# binary, for checking that a refactoring changes no number: run it with the binary before and
# after, then `scripts/compare_runs.py BEFORE_DIR AFTER_DIR` lists every metric that differs.
#   scripts/protocol_runs.sh OLD/build/examples/mtrec before 1
#   scripts/protocol_runs.sh build/examples/mtrec after 1 && scripts/compare_runs.py before after
set -euo pipefail
B=$1; O=$2; S=${3:-42}; D=${MTREC_DATA_DIR:-$(dirname "$0")/../../shared/data}/ml-100k
mkdir -p $O
ML="--dataset ml-100k --data-dir $D --log-level warn --seed $S"
SY="--dataset synthetic --synthetic-users 600 --synthetic-items 300 --synthetic-interactions 30000 --log-level warn --seed $S"
$B train --task rating $ML --split u1 --json $O/R_mcmc.json
$B train --task rating --solver sgd --epochs 10 $ML --split u1 --json $O/R_sgd.json
$B train --task ctr --epochs 5 $ML --split u1 --json $O/C.json
$B train --task dmf --epochs 3 $ML --split loo --json $O/D.json
$B train --task knn $ML --split loo --json $O/D_knn.json
$B train --task next-item --epochs 5 $ML --split loo --json $O/S.json
$B train --epochs 2 $SY --json $O/M.json
