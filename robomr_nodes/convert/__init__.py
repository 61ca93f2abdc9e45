"""Converters between ROS 2 messages and plain numpy/dataclasses, used by both backends.

Readers accept rosbags and rclpy messages alike (attribute access and ``np.frombuffer`` only);
writers build rosbags messages, which the rclpy backend publishes as CDR bytes.
"""
