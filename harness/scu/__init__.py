"""Simulated SCUs: scripted C-STORE exchanges with fault injection at every layer."""

from harness.scu.client import Framing, SimulatedSCU, StoreRequest, standard_contexts
from harness.scu.outcome import Outcome

__all__ = ["Framing", "Outcome", "SimulatedSCU", "StoreRequest", "standard_contexts"]
