"""The hard-timed control loop and its safety parts. Never imports torch."""
