# mmdiff: the two commands a newcomer types are `make demo` and `make test`.
# Both build the project environment (.venv) on first use through tools/misc/install.sh and reuse it afterwards.
VENV ?= .venv
TEST_WORKERS ?= 2
PYTHON := $(VENV)/bin/python
DEMO_CONFIG := configs/mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py
DEMO_DATA := data/demo_shapes
DEMO_WORK := work_dirs/demo

SEG_CONFIG := configs/upernet/upernet_adm-tiny-t10_demo-shapes-128x128.py
SEG_DATA := data/demo_shapes_seg
SEG_WORK := work_dirs/demo_seg

DIGITS_PRETRAIN := configs/diffusion_pretraining/ddpm_adm-digits_2k_digits-16px.py
DIGITS_PROBE := configs/linear_probe/linear-probe_adm-digits-b18-t150_digits-16px.py
DIGITS_WORK := work_dirs/digits_evidence
DIGITS_GRID := --timesteps 10 50 100 150 250 400 600 --blocks 3 6 9 12 13 14 15 16 17 18 19 20 21 22 23 24 25

# CIFAR-10 as JPEG folders (../shared/data/README.md), extracted once under data/ (MMDIFF_SHARED_DATA names another
# folder holding cifar10-jpeg.tar.gz; CIFAR10_ROOT another place to extract it)
SHARED_DATA ?= $(or $(MMDIFF_SHARED_DATA),../shared/data)
CIFAR10_ROOT ?= data/cifar10-jpeg/
CIFAR10_WORK := work_dirs/cifar10_evidence
CIFAR10_PRETRAIN := configs/diffusion_pretraining/ddpm_adm-cifar32_1200_cifar10-32px.py
CIFAR10_PROBE := configs/linear_probe/linear-probe_adm-cifar32-b18-t50_cifar10-32px.py
CIFAR10_GRID := --timesteps 10 50 150 --blocks 3 6 9 12 13 15 17 19 21 --labels-per-class 10 100 --batch-size 64
CIFAR10_FEW_LABELS := configs/repfusion/resnet18-cifar_cifar10-32px

REPFUSION := configs/repfusion
REPFUSION_POLICY := $(REPFUSION)/repfusion_adm-digits-b18-policy_resnet18-cifar_digits-16px.py
REPFUSION_FIXED := $(REPFUSION)/repfusion_adm-digits-b18-t100_resnet18-cifar_digits-16px.py
REPFUSION_PUBLISHED := $(REPFUSION)/repfusion_adm-digits-mid-policy_resnet18-cifar_published-recipe_digits-16px.py
REPFUSION_WORK := work_dirs/repfusion_digits

.PHONY: install demo demo-seg evidence-digits evidence-repfusion evidence-cifar10 test test-quick test-coverage

install:
	MMDIFF_VENV=$(VENV) bash tools/misc/install.sh

# Mask R-CNN on generated shapes: make the data if absent, train, evaluate (COCO bbox/segm), save overlays.
demo: install
	test -f $(DEMO_DATA)/annotations/instances_val.json || $(PYTHON) tools/misc/make_demo_data.py $(DEMO_DATA)
	$(PYTHON) tools/train.py --overwrite $(DEMO_CONFIG) --work-dir $(DEMO_WORK)
	$(PYTHON) tools/test.py $(DEMO_CONFIG) $$(cat $(DEMO_WORK)/last_checkpoint) --work-dir $(DEMO_WORK) \
		--show-dir $(DEMO_WORK)/overlays
	@echo "overlays: $(DEMO_WORK)/overlays"

# UperNet on generated shapes in the ADE20K layout: make the data if absent, train, evaluate mIoU (whole and slide).
demo-seg: install
	test -f $(SEG_DATA)/annotations/validation/000000.png || $(PYTHON) tools/misc/make_demo_data.py $(SEG_DATA) --task seg
	$(PYTHON) tools/train.py --overwrite $(SEG_CONFIG) --work-dir $(SEG_WORK)
	$(PYTHON) tools/test.py $(SEG_CONFIG) $$(cat $(SEG_WORK)/last_checkpoint) --work-dir $(SEG_WORK) \
		--cfg-options model.test_cfg.mode=slide "model.test_cfg.crop_size=[96,96]" "model.test_cfg.stride=[64,64]"

# The papers' finding on real data (docs/digits_evidence.md): pre-train a U-Net on the bundled handwritten digits,
# save a sample grid, then sweep a linear probe over timesteps x blocks for the pre-trained and the randomly
# initialised U-Net (and raw pixels) on the same held-out split, and summarise. About 15 minutes on 2 CPU cores.
evidence-digits: install
	rm -rf $(DIGITS_WORK)
	$(PYTHON) tools/train.py --overwrite $(DIGITS_PRETRAIN) --work-dir $(DIGITS_WORK)/pretrain
	$(PYTHON) tools/misc/sample_diffusion.py $(DIGITS_PRETRAIN) $$(cat $(DIGITS_WORK)/pretrain/last_checkpoint) \
		--out $(DIGITS_WORK)/samples.png
	$(PYTHON) tools/feature_tools/sweep_timesteps_blocks.py $(DIGITS_PROBE) $(DIGITS_GRID) --pixel-baseline \
		--work-dir $(DIGITS_WORK)/sweep_pretrained \
		--cfg-options model.backbone.init_cfg.checkpoint=$$(cat $(DIGITS_WORK)/pretrain/last_checkpoint)
	$(PYTHON) tools/feature_tools/sweep_timesteps_blocks.py $(DIGITS_PROBE) $(DIGITS_GRID) --work-dir $(DIGITS_WORK)/sweep_random \
		--cfg-options model.backbone.init_cfg=None
	$(PYTHON) tools/feature_tools/compare_sweeps.py $(DIGITS_WORK)/sweep_pretrained $(DIGITS_WORK)/sweep_random \
		--names pretrained random-init --out $(DIGITS_WORK)/summary.md

# RepFusion on the digits (docs/repfusion_digits.md): distil the pre-trained 'adm-digits' U-Net (from
# `make evidence-digits`, pre-trained here if absent) into a ResNet-18, with mmdiff's timestep policy, at a fixed t
# and with the published recipe (its tap, loss, reward head, entropy schedule, SGD and EMA, at demo scale);
# export each student, fine-tune it and linear-probe it frozen; train the same ResNet-18 from scratch and probe it
# at random init with the same schedules, and from scratch for as many epochs as distillation plus fine-tuning;
# repeat fine-tuning and probing with 10 labels per class; summarise the held-out accuracies. About 40 minutes on
# 2 CPU cores.
evidence-repfusion: install
	test -f $(DIGITS_WORK)/pretrain/iter_2000.pth || $(PYTHON) tools/train.py $(DIGITS_PRETRAIN) --work-dir $(DIGITS_WORK)/pretrain
	rm -rf $(REPFUSION_WORK)
	$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar_digits-16px_scratch.py --work-dir $(REPFUSION_WORK)/finetune_scratch
	$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar_digits-16px_scratch-58e.py \
		--work-dir $(REPFUSION_WORK)/finetune_scratch-58e
	$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar-frozen_digits-16px_linear-probe-random.py \
		--work-dir $(REPFUSION_WORK)/probe_random-init
	for run in policy=$(REPFUSION_POLICY) fixed=$(REPFUSION_FIXED) published=$(REPFUSION_PUBLISHED); do \
		mode=$${run%%=*}; \
		$(PYTHON) tools/train.py --overwrite $${run#*=} --work-dir $(REPFUSION_WORK)/distill_$$mode && \
		$(PYTHON) tools/model_converters/export_student.py $$(cat $(REPFUSION_WORK)/distill_$$mode/last_checkpoint) \
			--out $(REPFUSION_WORK)/student_$$mode.pth --overwrite && \
		$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar_digits-16px_finetune-repfusion.py \
			--work-dir $(REPFUSION_WORK)/finetune_repfusion-$$mode \
			--cfg-options model.backbone.init_cfg.checkpoint=$(REPFUSION_WORK)/student_$$mode.pth && \
		$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar-frozen_digits-16px_linear-probe-repfusion.py \
			--work-dir $(REPFUSION_WORK)/probe_repfusion-$$mode \
			--cfg-options model.backbone.init_cfg.checkpoint=$(REPFUSION_WORK)/student_$$mode.pth && \
		$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar_digits-16px-10-per-class_finetune-repfusion.py \
			--work-dir $(REPFUSION_WORK)/few-labels_repfusion-$$mode \
			--cfg-options model.backbone.init_cfg.checkpoint=$(REPFUSION_WORK)/student_$$mode.pth || exit 1; \
	done
	$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar_digits-16px-10-per-class_scratch.py \
		--work-dir $(REPFUSION_WORK)/few-labels_scratch
	$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar-frozen_digits-16px-10-per-class_linear-probe-repfusion.py \
		--work-dir $(REPFUSION_WORK)/few-labels-probe_repfusion-fixed
	$(PYTHON) tools/train.py --overwrite $(REPFUSION)/resnet18-cifar-frozen_digits-16px-10-per-class_linear-probe-repfusion.py \
		--work-dir $(REPFUSION_WORK)/few-labels-probe_random-init --cfg-options model.backbone.init_cfg=None
	$(PYTHON) tools/analysis_tools/summarize_runs.py $(REPFUSION_WORK)/finetune_* $(REPFUSION_WORK)/probe_* \
		$(REPFUSION_WORK)/few-labels* --metric accuracy/top1 --out $(REPFUSION_WORK)/summary.md

# The papers' finding on real photographs (docs/cifar10_evidence.md): pre-train the adm-cifar32 U-Net on the 50,000
# CIFAR-10 train images (unlabelled), save a sample grid, sweep a linear probe over timesteps x blocks (fitted on
# CIFAR10_PROBE_LABELS train images per class, and on 10 and 100 per class) on all 10,000 test images for the last
# checkpoint and the CIFAR10_CURVE ones, the same U-Net at random initialisation and raw pixels; then distil the
# U-Net into a CIFAR ResNet-18 (RepFusion, mmdiff's policy) and fine-tune it with 10 and 100 labels per class
# against the same ResNet-18 from scratch. About 90 minutes on 2 CPU cores with the defaults; the variables are the
# knobs of a longer (GPU) run.
CIFAR10_ITERS ?= 1200
CIFAR10_CHECKPOINT_INTERVAL ?= 400
CIFAR10_CURVE ?= 800 400
CIFAR10_PROBE_LABELS ?= 1000
CIFAR10_DISTILL_ITERS ?= 400
CIFAR10_LAST := $(CIFAR10_WORK)/pretrain/iter_$(CIFAR10_ITERS).pth
CIFAR10_SWEEP := $(PYTHON) tools/feature_tools/sweep_timesteps_blocks.py $(CIFAR10_PROBE) $(CIFAR10_GRID)
evidence-cifar10: export MMDIFF_CIFAR10_JPEG_ROOT := $(CIFAR10_ROOT)
evidence-cifar10: install
	@test -f $(CIFAR10_ROOT)/.extracted || test -f $(SHARED_DATA)/cifar10-jpeg.tar.gz || { \
		echo "$(SHARED_DATA)/cifar10-jpeg.tar.gz is absent: set MMDIFF_SHARED_DATA to the folder that holds it"; \
		exit 1; }
	test -f $(CIFAR10_ROOT)/.extracted || { mkdir -p $(CIFAR10_ROOT) && \
		tar xzf $(SHARED_DATA)/cifar10-jpeg.tar.gz -C $(CIFAR10_ROOT) && touch $(CIFAR10_ROOT)/.extracted; }
	rm -rf $(CIFAR10_WORK)
	$(PYTHON) tools/train.py $(CIFAR10_PRETRAIN) --work-dir $(CIFAR10_WORK)/pretrain --cfg-options \
		train_cfg.max_iters=$(CIFAR10_ITERS) param_scheduler.1.end=$(CIFAR10_ITERS) \
		default_hooks.checkpoint.interval=$(CIFAR10_CHECKPOINT_INTERVAL)
	$(PYTHON) tools/misc/sample_diffusion.py $(CIFAR10_PRETRAIN) $(CIFAR10_LAST) --out $(CIFAR10_WORK)/samples.png
	for iters in $(CIFAR10_ITERS) $(CIFAR10_CURVE); do \
		$(CIFAR10_SWEEP) $$([ $$iters = $(CIFAR10_ITERS) ] && echo --pixel-baseline) \
			--work-dir $(CIFAR10_WORK)/sweep_pretrained-$$iters --cfg-options \
			model.backbone.init_cfg.checkpoint=$(CIFAR10_WORK)/pretrain/iter_$$iters.pth \
			train_dataloader.dataset.labels_per_class=$(CIFAR10_PROBE_LABELS) || exit 1; \
	done
	$(CIFAR10_SWEEP) --work-dir $(CIFAR10_WORK)/sweep_random --cfg-options model.backbone.init_cfg=None \
		train_dataloader.dataset.labels_per_class=$(CIFAR10_PROBE_LABELS)
	$(PYTHON) tools/feature_tools/compare_sweeps.py \
		$(foreach iters,$(CIFAR10_ITERS) $(CIFAR10_CURVE),$(CIFAR10_WORK)/sweep_pretrained-$(iters)) \
		$(CIFAR10_WORK)/sweep_random --names $(foreach iters,$(CIFAR10_ITERS) $(CIFAR10_CURVE),pretrained-$(iters)) \
		random-init --out $(CIFAR10_WORK)/summary.md
	$(PYTHON) tools/train.py $(REPFUSION)/repfusion_adm-cifar32-b18-policy_resnet18-cifar_cifar10-32px.py \
		--work-dir $(CIFAR10_WORK)/distill --cfg-options model.teacher.init_cfg.checkpoint=$(CIFAR10_LAST) \
		train_cfg.max_iters=$(CIFAR10_DISTILL_ITERS) param_scheduler.1.end=$(CIFAR10_DISTILL_ITERS) \
		default_hooks.checkpoint.interval=$(CIFAR10_DISTILL_ITERS)
	$(PYTHON) tools/model_converters/export_student.py $$(cat $(CIFAR10_WORK)/distill/last_checkpoint) \
		--out $(CIFAR10_WORK)/student.pth
	for labels in 100 10; do \
		for init in scratch finetune-repfusion; do \
			$(PYTHON) tools/train.py $(CIFAR10_FEW_LABELS)-$$labels-per-class_$$init.py \
				--work-dir $(CIFAR10_WORK)/few-labels-$${labels}_$${init} || exit 1; \
		done; \
	done
	$(PYTHON) tools/analysis_tools/summarize_runs.py $(CIFAR10_WORK)/few-labels-* --metric accuracy/top1 \
		--out $(CIFAR10_WORK)/repfusion_summary.md

# The whole suite, which CI runs (.ci/run), on TEST_WORKERS processes (pytest-xdist), each with one math thread
# (TEST_WORKERS workers share the cores; more threads per worker only contend); a worker that runs out of tests
# takes some of the other's (worksteal); the 25 slowest tests are printed at the end (tests/README.md).
PYTEST := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTHON) -m pytest -n $(TEST_WORKERS) --dist worksteal
test: install
	$(PYTEST) --durations=25 --doctest-modules mmdiff tests

# Everything but the end-to-end runs of the tools (tests marked slow): a few minutes, for iterating.
test-quick: install
	$(PYTEST) -m "not slow" --doctest-modules mmdiff tests

# The suite with the line coverage of mmdiff/ (pytest-cov; code run in subprocesses is not counted).
test-coverage: install
	$(PYTEST) --cov=mmdiff --cov-report=term --doctest-modules mmdiff tests
