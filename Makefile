# mmcli — the two commands a fresh clone needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := runs/demo

.PHONY: install demo test lint compare clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmcli preprocess sample_data/manifest.csv -o $(RUN)/pre
	$(BIN)/mmcli extract $(RUN)/pre -o $(RUN)/feat
	$(BIN)/mmcli fuse $(RUN)/feat -o $(RUN)/fused --method concat
	$(BIN)/mmcli train $(RUN)/fused -o $(RUN)/model
	$(BIN)/mmcli eval $(RUN)/model $(RUN)/fused -o $(RUN)/eval
	$(BIN)/mmcli predict $(RUN)/model sample_data/unlabeled.csv -o $(RUN)/pred
	@echo
	@echo "Test-split metrics ($(RUN)/eval/metrics.json):"
	@$(BIN)/python -c "import json; m = json.load(open('$(RUN)/eval/metrics.json'))['test']; print('  accuracy %.3f  balanced_accuracy %.3f  macro_f1 %.3f  n %d' % (m['accuracy'], m['balanced_accuracy'], m['macro_f1'], m['n']))"
	@echo "Report: $(RUN)/eval/report.html (open it in a browser; $(RUN)/eval/report.md as text)"
	@echo "Predictions: $(RUN)/pred/predictions.csv"

test: $(STAMP)
	$(BIN)/ruff check mmcli tests bench sample_data
	$(BIN)/python -m pytest

compare: $(STAMP)
	$(BIN)/python bench/modality_comparison.py

clean:
	rm -rf runs $(VENV)
