"""Stage 4: texts to vectors with the sentence-transformers model, compiled by OpenVINO where
it can (bf16 where the CPU computes it natively), torch otherwise. The search API embeds its
queries with the same code.

    embedder.py         the model, its tokenizer, batches and the backend rules
    openvino_forward.py the OpenVINO forward pass

May import: settings, store
"""
