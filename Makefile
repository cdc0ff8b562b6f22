# mmdiff: the two commands a newcomer types are `make demo` and `make test`.
# Both build the project environment (.venv) on first use through tools/install.sh and reuse it afterwards.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
DEMO_CONFIG := configs/mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py
DEMO_DATA := data/demo_shapes
DEMO_WORK := work_dirs/demo

SEG_CONFIG := configs/upernet/upernet_adm-tiny-t10_demo-shapes-128x128.py
SEG_DATA := data/demo_shapes_seg
SEG_WORK := work_dirs/demo_seg

.PHONY: install demo demo-seg test

install:
	MMDIFF_VENV=$(VENV) bash tools/install.sh

# Mask R-CNN on generated shapes: make the data if absent, train, evaluate (COCO bbox/segm), save overlays.
demo: install
	test -f $(DEMO_DATA)/annotations/instances_val.json || $(PYTHON) tools/make_demo_data.py $(DEMO_DATA)
	$(PYTHON) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_WORK)
	$(PYTHON) tools/test.py $(DEMO_CONFIG) $$(cat $(DEMO_WORK)/last_checkpoint) --work-dir $(DEMO_WORK) \
		--show-dir $(DEMO_WORK)/overlays
	@echo "overlays: $(DEMO_WORK)/overlays"

# UperNet on generated shapes in the ADE20K layout: make the data if absent, train, evaluate mIoU (whole and slide).
demo-seg: install
	test -f $(SEG_DATA)/annotations/validation/000000.png || $(PYTHON) tools/make_demo_data.py $(SEG_DATA) --task seg
	$(PYTHON) tools/train.py $(SEG_CONFIG) --work-dir $(SEG_WORK)
	$(PYTHON) tools/test.py $(SEG_CONFIG) $$(cat $(SEG_WORK)/last_checkpoint) --work-dir $(SEG_WORK) \
		--cfg-options model.test_cfg.mode=slide "model.test_cfg.crop_size=[96,96]" "model.test_cfg.stride=[64,64]"

test: install
	$(PYTHON) -m pytest --doctest-modules mmdiff tests
