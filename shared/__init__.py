"""The course library: one import surface for every chapter's public code.

Later chapters write ``from shared import GPTModel`` instead of copying code.
Chapter names are resolved lazily (PEP 562 ``__getattr__``): importing
``shared`` loads no chapter, so a chapter module may itself import from
``shared`` without creating an import cycle.
"""

from importlib import import_module

# public name -> module that defines it
_EXPORTS = {
    # plumbing (imports no chapter)
    "settings": "shared.config",
    "Settings": "shared.config",
    "PROFILES": "shared.config",
    "get_device": "shared.runtime",
    "set_seed": "shared.runtime",
    "fetch": "shared.data",
    "REGISTRY": "shared.data",
    "DataFile": "shared.data",
    "ChecksumError": "shared.data",
    "FetchError": "shared.data",
    "gpt2_encoding": "shared.data",
    "END_OF_TEXT": "shared.data",
    "END_OF_TEXT_ID": "shared.data",
    "sha256_of": "shared.data",
    "atomic_write": "shared.files",
    # ch01
    "count_gpt_parameters": "ch01_intro.intro",
    # ch02
    "SimpleTokenizerV1": "ch02_tokenization.tokenization",
    "SimpleTokenizerV2": "ch02_tokenization.tokenization",
    "BPETokenizer": "ch02_tokenization.tokenization",
    "gpt2_byte_alphabet": "ch02_tokenization.tokenization",
    "GPTDataset": "ch02_tokenization.tokenization",
    "create_dataloader": "ch02_tokenization.tokenization",
    # ch03
    "MultiHeadAttention": "ch03_attention.attention",
    # ch04
    "GPTConfig": "ch04_gpt_model.gpt_model",
    "GPT_CONFIGS": "ch04_gpt_model.gpt_model",
    "GPTModel": "ch04_gpt_model.gpt_model",
    "generate_text_simple": "ch04_gpt_model.gpt_model",
    # ch05
    "text_to_token_ids": "ch05_pretraining.pretraining",
    "token_ids_to_text": "ch05_pretraining.pretraining",
    "calc_loss_batch": "ch05_pretraining.pretraining",
    "calc_loss_loader": "ch05_pretraining.pretraining",
    "train_model": "ch05_pretraining.pretraining",
    "sample_next_token": "ch05_pretraining.pretraining",
    "generate": "ch05_pretraining.pretraining",
    "KVCache": "ch05_pretraining.pretraining",
    "save_checkpoint": "ch05_pretraining.pretraining",
    "load_checkpoint": "ch05_pretraining.pretraining",
    "load_gpt2_weights": "ch05_pretraining.pretraining",
    "load_pretrained": "ch05_pretraining.pretraining",
    "course_base_config": "ch05_pretraining.pretraining",
    "course_base_dir": "ch05_pretraining.pretraining",
    "save_model_folder": "ch05_pretraining.pretraining",
    "read_model_folder": "ch05_pretraining.pretraining",
    "read_model_info": "ch05_pretraining.pretraining",
    "set_sdpa": "ch05_pretraining.pretraining",
    "fast_path_options": "ch05_pretraining.pretraining",
    # ch06
    "CLASS_NAMES": "ch06_classification.classification",
    "prepare_spam_splits": "ch06_classification.classification",
    "SpamDataset": "ch06_classification.classification",
    "prepare_for_classification": "ch06_classification.classification",
    "calc_accuracy_loader": "ch06_classification.classification",
    "train_classifier": "ch06_classification.classification",
    "classify_text": "ch06_classification.classification",
    # ch07
    "FINETUNE_SETTINGS": "ch07_instruction.instruction",
    "format_input": "ch07_instruction.instruction",
    "InstructionDataset": "ch07_instruction.instruction",
    "instruction_collate": "ch07_instruction.instruction",
    "extract_response": "ch07_instruction.instruction",
    "load_instruction_model": "ch07_instruction.instruction",
    "chat_loop": "ch07_instruction.instruction",
    "read_messages": "ch07_instruction.instruction",
    "load_instruction_data": "ch07_instruction.instruction",
    "split_entries": "ch07_instruction.instruction",
    "generate_responses": "ch07_instruction.instruction",
    "score_responses": "ch07_instruction.instruction",
    "token_f1": "ch07_instruction.instruction",
    "judge_responses": "ch07_instruction.instruction",
    # ch08
    "LlamaConfig": "ch08_modern_llm.modern_llm",
    "LlamaModel": "ch08_modern_llm.modern_llm",
    "ChatModel": "ch08_modern_llm.modern_llm",
    "load_smollm2": "ch08_modern_llm.modern_llm",
    "load_hf_llama": "ch08_modern_llm.modern_llm",
    "render_chat": "ch08_modern_llm.modern_llm",
    "instruction_question": "ch08_modern_llm.modern_llm",
    "echo_answers": "ch08_modern_llm.modern_llm",
    "nearest_training_answers": "ch08_modern_llm.modern_llm",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'shared' has no attribute {name!r}")
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ImportError(
            f"shared.{name} lives in {module_name}, which does not exist yet: "
            "add that chapter, or run `llm-course export` to regenerate chapter modules"
        ) from exc
    value = getattr(module, name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return __all__
