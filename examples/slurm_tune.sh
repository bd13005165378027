#!/bin/bash
# Tune on a SLURM cluster: every array task is one torchrun job, and all of them share one study.
#
#   export LIGHTNING_HPO_STORAGE=postgresql+psycopg://user:password@dbhost/hpo
#   sbatch examples/slurm_tune.sh                     # 4 jobs of 1 node x 4 GPUs, one study
#   sbatch --nodes=2 examples/slurm_tune.sh           # each trial on 2 nodes x 4 GPUs
#
# Each job trains one trial at a time with DDP over all its GPUs (global rank 0 samples and records);
# the jobs fill the study's n_trials together, whenever SLURM starts them. Resubmitting resumes the study.
#
# Preemption and time limits: 90 s before the time limit SLURM sends SIGUSR1 to this batch shell
# (B:, since torchrun's agent would die of a SIGUSR1 instead of passing it on). The trap below sends
# SIGTERM to the trial's processes (srun -> torchrun -> every rank): they finish their batch, write
# the trial's resumable checkpoint, and exit with "trial N saved at step S; rerun to resume". The job
# then requeues itself (--requeue) and, once SLURM restarts it, continues that trial from its
# checkpoint. A job killed outright (node loss, preemption without warning) leaves its trial to be
# resumed by any job of the study from its last checkpoint, once its heartbeat is older than the
# grace period (60 s).

#SBATCH --job-name=lightning-hpo
#SBATCH --array=0-3
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --time=04:00:00
#SBATCH --output=lightning-hpo-%A_%a.out
#SBATCH --signal=B:SIGUSR1@90
#SBATCH --requeue
#SBATCH --open-mode=append

set -euo pipefail

: "${LIGHTNING_HPO_STORAGE:?set it to a PostgreSQL URL that every node can reach}"
GPUS_PER_NODE="${SLURM_GPUS_ON_NODE:-4}"
# Logs and checkpoints go to the submission directory, which clusters share between nodes.
ROOT_DIR="${LIGHTNING_HPO_ROOT_DIR:-$SLURM_SUBMIT_DIR/lightning_hpo_runs}"

if [ "${SLURM_NNODES:-1}" -gt 1 ]; then
    # One torchrun job across this allocation's nodes: torchrun's c10d rendezvous on the first node.
    HEAD_NODE="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
    LAUNCH=(--nnodes="$SLURM_NNODES" --nproc_per_node="$GPUS_PER_NODE"
            --rdzv-backend=c10d --rdzv-endpoint="$HEAD_NODE:29500" --rdzv-id="$SLURM_JOB_ID")
else
    LAUNCH=(--standalone --nproc_per_node="$GPUS_PER_NODE")
fi

# This task's job id as scontrol knows it (an array task is <array job>_<task>).
JOB_ID="${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}"
JOB_ID="${JOB_ID:-$SLURM_JOB_ID}"

save_and_requeue() {
    echo "SIGUSR1: the time limit is near; saving the running trial and requeueing job $JOB_ID"
    kill -TERM "$TRAINING" 2>/dev/null || true
    wait "$TRAINING" || true
    scontrol requeue "$JOB_ID"
    exit 0
}
trap save_and_requeue USR1

# srun starts one torchrun per node (--ntasks-per-node=1); torchrun starts one process per GPU.
# In the background, so that the trap runs as soon as the signal comes.
srun torchrun "${LAUNCH[@]}" "$SLURM_SUBMIT_DIR/examples/ddp_digits.py" \
    --storage "$LIGHTNING_HPO_STORAGE" \
    --study-name "${LIGHTNING_HPO_STUDY:-digits_ddp}" \
    --n-trials "${LIGHTNING_HPO_N_TRIALS:-40}" \
    --root-dir "$ROOT_DIR" &
TRAINING=$!
wait "$TRAINING"
