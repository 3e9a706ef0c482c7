#!/usr/bin/env bash
# The variables of the experiment scripts, and the shell helpers the studies share. The stages themselves are
# planned in Python (orchestration/plan.py: python -m orchestration.plan <script name> <model config>), from
# the experiment grid $EXPERIMENTS and the results layout (infra/layout.py); each stage is skipped when its
# output is complete (a manifest is present), so rerunning a script resumes it. Which runs feed which
# artifact, the fine-tuning data, their sample sizes and epochs: the grid (configs/experiments/paper.yaml);
# the variables below override single values; unset, each stage's own default applies.
#
#   PLAN=1 bash scripts/<artifact>.sh <model config>   prints every stage command in order and runs nothing;
#                                                      complete stages are printed as "[skip] <output>".
# Variables (paper defaults in brackets):
#   EXPERIMENTS [configs/experiments/paper.yaml]   the experiment grid
#   OUT [outputs]            results root; one model's results go to $OUT/<model config>
#   MODEL_PATH [the config's hub_id]    where the unpruned model is read from
#   TASKS [gsm8k,humaneval,mbpp,xsum]   generative tasks evaluated
#   TASK_DATA []             extra eval flags for local task files, e.g. "--data gsm8k=/data/gsm8k.jsonl"
#   ITEMS [registry: 1000]   items per generative task;  MAX_NEW_TOKENS [8192];  BACKEND [auto]: vllm on GPU nodes, else hf
#   CLASSIFY [1]             also run the lm-eval classification tasks (0: never; unrecovered: the unpruned and
#                            pruned models only) (CLS_TASKS, CLS_LIMIT [0.2], CLS_INCLUDE,
#                            CLS_FEWSHOT [5], CLS_DTYPE [auto])
#   CAL_TASKS [gsm8k,humaneval,xsum], CAL_ITEMS [100]    the iterative search's and the sweep's tasks
#   CALIBRATION [openai/gsm8k], N_CALIBRATION [100]      BI / angular calibration texts
#   METHODS, AMOUNTS, RECOVERIES, RECIPES   narrow every artifact's grid (default: $EXPERIMENTS), as the
#                            artifacts' build narrows it, so that a table reads the runs the script made
#   <DATASET> (ALPACA, DOLCI, GSM8K, ...)   a fine-tuning dataset's hub id or local file [the grid's source]
#   SFT_LIMIT [the dataset's limit]; SFT_MAX_LENGTH [8000]   examples sampled; longest example kept (tokens)
#   TRAIN_FLAGS [] extra train.sft flags;
#   FULL_LAUNCH [python]     launcher of full fine-tuning, e.g. "accelerate launch --config_file ..."
#   STEPS [paper]            paper: the dataset's epochs; as_run: stop at the step the original evaluated
#                            (datasets.<name>.steps_as_run: Alpaca 5823, one epoch)
#   SGR_CONTEXT [8192, self_generate.generate's]   prompt + response of self-generation
#   PRUNE_DTYPE [the model config's dtype]   dtype of block influence, the search, the sweep, the BI profile and the probe
#   PROBE_ITEMS [200];  PROBE_DATA [EleutherAI/arithmetic, config arithmetic_1dc; or a local JSONL];
#   PROBE_SEED [42] the probe's item sample
#   SEED [each stage's]      the seed of sampling and fine-tuning;  GEN_BATCH [each stage's]  prompts per
#                            generation batch on the HF backend
#   SPLIT_METHODS []         this process's share of the methods (scripts/toy_study.sh's two sides)
#   BUILD [1]                0: leave the tables and figures to one build at the end

die() { echo "error: $*" >&2; exit 2; }

# model_field <model config> <field>: a value of configs/models/<model config>.yaml
model_field() {
  python -c "from infra.model_spec import load_model_spec; print(load_model_spec('$1').$2)"
}

# plan <plan> <model config>: run a plan of orchestration/plan.py (a script's, or a stage the studies share:
# base_scores, base_greedy, base_responses, base_probe, sweep_layers, artifacts); PLAN=1 prints it.
plan() {
  python -m orchestration.plan "$@"
}
