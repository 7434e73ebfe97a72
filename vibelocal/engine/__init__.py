"""Running a turn: the pure turn logic, and the llama.cpp adapter beneath it.

- turn.py: the decode loop of one turn (`TurnLoop`): sample, split, budget, inject, stream events;
- think.py: the `<think>` splitter, a pure state machine over decoded text;
- budget.py: the thinking and answer budgets, pure state machines;
- loops.py: repetition detection; prompt.py: chat templates; control.py: live commands from a front end;
- contract.py: `ChatEngine`, what a front end needs from any engine;
- scripted.py: `ScriptedEngine`, a deterministic ChatEngine for front-end tests and the rendering benchmark;
- llama/: the only code that imports llama_cpp (load, decode, logs).

Nothing here but llama/ touches a model: the turn loop drives any `TokenBackend`.
"""
