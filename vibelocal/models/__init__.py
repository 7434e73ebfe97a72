"""Getting a verified model onto the disk: the catalog of manifests, the hub download with its resumable
transfer, the local registry and Hugging Face cache, and the GGUF header reader.

The only wing that imports huggingface_hub.
"""
