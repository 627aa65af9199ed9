"""The paper's evaluation protocol in the simulator: the top layer that composes the
runtime with the drivers (grasprt.runtime never builds a driver itself)."""
