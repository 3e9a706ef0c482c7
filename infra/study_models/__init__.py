"""The models and data the CPU studies and the tests run on: the toy model trained here on the toy tasks
(``toy_model``, ``toy_tasks``), tiny random models of the paper's architectures with their real chat templates
(``tiny_models``), and the real pretrained SmolLM2-135M-Instruct with its study data (``real_model``). The
stages never import this room; the tests, the benchmarks and the studies' setup do."""
