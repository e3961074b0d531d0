# vitrepro: `make train` and `make test` are all a fresh machine needs (Python 3.11 + pip).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
# The main job: ViT-micro/8 on 37,500 glyph-pair images for 3,000 steps (MAIN= for the bare defaults)
MAIN   ?= model=vit_micro_p8 pretraining=glyphs_37k5 recipe.steps=3000 recipe.schedule.warmup_steps=100
PYTEST_ARGS ?=
BENCH_ARGS ?=
PROFILE ?= tiny
SOURCE  ?= local
SWEEP   ?=
JOBS    ?=
LAUNCHER ?= local
SEEDS   ?=
SEED    ?= 0
STUDY_ARGS = --profile $(PROFILE) --source $(SOURCE) $(if $(JOBS),--jobs $(JOBS)) --launcher $(LAUNCHER) \
             $(if $(SWEEP),--sweep $(SWEEP)) $(if $(SEEDS),--seeds $(SEEDS) --seed $(SEED))

.DEFAULT_GOAL := help
CHECKPOINT ?=
.PHONY: help install train test test-fast fuzz lint format clean bench report bench-tables inspect \
        reproduce rehearse studies reproduce-fig3 reproduce-fig4 reproduce-fig5 reproduce-table8 reproduce-fig9 reproduce-fig8 reproduce-tuning reproduce-relational

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-17s %s\n", $$1, $$2}'

# The stamp makes install idempotent: it reruns only when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install vitrepro (editable, with dev extras)

train: install ## the main job: the tiny studies' ViT learns the embedded glyph task (ARGS=overrides)
	$(BIN)/python src/train.py $(MAIN) $(ARGS)

reproduce: install ## any study: STUDY=pilot|fig3|fig4|fig5|relational|relational_relpos|relational_relpos_long|tuning|table8|fig9|fig8|fig8_long (options below)
	$(if $(STUDY),,$(error give STUDY=<name>: a study of conf/experiment/study/ (its experiments/<name>/study.yaml)))
	$(BIN)/python -m vitrepro.studies.pool $(STUDY) $(STUDY_ARGS)

reproduce-fig3: ## Figure 3 (PROFILE=tiny|small|full SEEDS=N SEED=S SOURCE=local|wandb SWEEP=E/P/ID JOBS=N LAUNCHER=local|slurm)
	@$(MAKE) --no-print-directory reproduce STUDY=fig3

reproduce-fig4: ## Figure 4, linear 5-shot vs nested subsets (same options)
	@$(MAKE) --no-print-directory reproduce STUDY=fig4

reproduce-fig5: ## Figure 5, transfer vs pre-training compute (same options)
	@$(MAKE) --no-print-directory reproduce STUDY=fig5

reproduce-tuning: ## the tiny studies' tuning grid (both families, same grid), chosen on validation
	@$(MAKE) --no-print-directory reproduce STUDY=tuning

reproduce-relational: ## Figure 3's relational variant (label = glyph pair and arrangement): ViT with relative positions, 25k steps
	@$(MAKE) --no-print-directory reproduce STUDY=relational_relpos_long

reproduce-table8: ## Table 8, position embeddings ablation (same options)
	@$(MAKE) --no-print-directory reproduce STUDY=table8

reproduce-fig9: ## Figure 9, class token vs global average pooling (same options)
	@$(MAKE) --no-print-directory reproduce STUDY=fig9

# The tiny profile draws Figure 8 at 25,000 steps, where every model meets the competence bar;
# the 15,000-step design (STUDY=fig8) stays for its record and for the small and full profiles.
FIG8_STUDY = $(if $(filter tiny,$(PROFILE)),fig8_long,fig8)
reproduce-fig8: ## Figure 8, scaling depth/width/MLP/patch size (tiny: 25k steps; SWEEP: its sweep IDs, comma-separated)
	@$(MAKE) --no-print-directory reproduce STUDY=$(FIG8_STUDY)

studies: install ## write each study's study.yaml and sweeps from its file in conf/experiment/study/
	$(BIN)/python -m vitrepro.studies.spec

REHEARSED ?= fig3 fig4 fig5 table8 fig9 fig8
rehearse: install ## the paper's studies end to end with tiny stand-ins, 2 DDP CPU processes a run (STUDY=one)
	@for study in $(or $(STUDY),$(REHEARSED)); do \
		echo "== rehearsing $$study"; \
		$(BIN)/python -m vitrepro.studies.pool $$study --profile full --rehearse \
			--results outputs/rehearsal || exit 1; \
	done

inspect: install ## Figures 6, 7: filters, position embeddings, attention distance, rollout (CHECKPOINT=run dir or file, ARGS=overrides)
	$(if $(CHECKPOINT),,$(error give CHECKPOINT=<run dir or checkpoint file>))
	$(BIN)/python src/inspect_model.py checkpoint=$(CHECKPOINT) $(ARGS)

test: install ## run the whole test suite (CPU, minutes; PYTEST_ARGS=extra pytest flags)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install ## the tests not marked slow
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

report: install ## one static HTML page of every study's results: outputs/report/index.html
	$(BIN)/python -m vitrepro.studies.report --profile $(PROFILE)

FUZZ_EXAMPLES ?= 500
fuzz: install ## fuzz src/train.py with hypothesis: FUZZ_EXAMPLES draws a tier (CI runs a few)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py $(PYTEST_ARGS)

bench: install ## training, MFU, data, few-shot speed vs baselines; table + JSON (BENCH_ARGS=--profile tiny|cpu|gpu)
	$(BIN)/python -m vitrepro.bench $(BENCH_ARGS)

bench-tables: install ## the bench tables of experiments/bench/README.md, regenerated from its records
	$(BIN)/python -m vitrepro.bench.report experiments/bench/README.md

lint: install ## ruff check and ruff format --check
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean: ## remove run outputs (outputs/, multirun/, wandb/, lightning_logs/)
	rm -rf outputs multirun wandb lightning_logs
