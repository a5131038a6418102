"""Neural-network building blocks of sqnn."""

from sqnn.nn.layers import BernoulliActivation, BinaryLinear, straight_through
from sqnn.nn.model import SQNN, NetworkConfig, build_network

__all__ = ["BernoulliActivation", "BinaryLinear", "NetworkConfig", "SQNN", "build_network", "straight_through"]
