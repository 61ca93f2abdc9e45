"""The cloud side of robomr: the inference service (``offload.serving``), the client the robot's
edge bridge uses (``offload.client``), local replica processes (``offload.replicas``) and load
generation (``offload.loadgen``). Never imports rclpy; see docs/offload.md."""
