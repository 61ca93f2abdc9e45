# robomr: the two commands are `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Keep CPU thread pools to the machine's cores; tests are deterministic either way.
export OMP_NUM_THREADS ?= 2
export MPLBACKEND ?= Agg

.PHONY: venv demo test test-numpy1 bench lint format clean

$(STAMP): requirements.txt constraints.txt setup.py
	./scripts/setup-venv.sh
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/robomr demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The tests under numpy 1.x, as a ROS 2 Jazzy machine has it (requirements-ros.txt): an overlay
# on .venv with only the versions that differ (scripts/setup-numpy1-venv.sh), and a subset of
# the suite that imports every package and exercises each library and the node runtime.
NUMPY1 := .venv-numpy1
NUMPY1_TESTS ?= test/robomr_nodes/test_package.py test/geometry test/sim/test_scene.py \
	test/sim/test_lidar.py test/sim/test_camera.py test/perception/test_voxelize.py \
	test/perception/test_detect.py test/perception/test_postprocess.py test/planning/gsclo \
	test/planning/croa/test_planner.py test/planning/croa/test_occlusion.py \
	test/planning/croa/test_polygons.py test/gs_render/test_rasterize.py \
	test/gs_render/test_metrics.py test/robomr_nodes/test_convert_pointcloud.py \
	test/robomr_nodes/test_ros_time.py test/robomr_nodes/test_launch_graph.py \
	test/robomr_nodes/test_bag_ros.py test/robomr_nodes/test_replay_regression.py
$(NUMPY1)/.installed: $(STAMP) requirements.txt scripts/requirements_ros.py scripts/setup-numpy1-venv.sh
	./scripts/setup-numpy1-venv.sh
	touch $@

test-numpy1: $(NUMPY1)/.installed
	PYTHONPATH=$(CURDIR) $(NUMPY1)/bin/python -m pytest $(NUMPY1_TESTS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/robomr bench all

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/ament_lint.py  # ament_flake8 / ament_pep257 / ament_xmllint's configuration

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(NUMPY1) build *.egg-info .pytest_cache .ruff_cache
