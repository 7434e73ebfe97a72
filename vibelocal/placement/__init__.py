"""Deciding how a model runs on this machine: hardware discovery (probe, the llama.cpp build, profile files),
memory and speed arithmetic, and the planner that picks quant, GPU layers, context and threads.

Everything but discovery is pure arithmetic over a `HardwareProfile`, so any machine can be described in a
profile file and planned for. The only wing that imports psutil.
"""
