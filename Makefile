# mmdiff: the two commands a newcomer types are `make demo` and `make test`.
# Both build the project environment (.venv) on first use through tools/install.sh and reuse it afterwards.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
DEMO_CONFIG := configs/mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py
DEMO_DATA := data/demo_shapes
DEMO_WORK := work_dirs/demo

.PHONY: install demo test

install:
	MMDIFF_VENV=$(VENV) bash tools/install.sh

# Mask R-CNN on generated shapes: make the data if absent, train, evaluate (COCO bbox/segm), save overlays.
demo: install
	test -f $(DEMO_DATA)/annotations/instances_val.json || $(PYTHON) tools/make_demo_data.py $(DEMO_DATA)
	$(PYTHON) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_WORK)
	$(PYTHON) tools/test.py $(DEMO_CONFIG) $$(cat $(DEMO_WORK)/last_checkpoint) --work-dir $(DEMO_WORK) \
		--show-dir $(DEMO_WORK)/overlays
	@echo "overlays: $(DEMO_WORK)/overlays"

test: install
	$(PYTHON) -m pytest --doctest-modules mmdiff tests
