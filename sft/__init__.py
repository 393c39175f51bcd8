"""Supervised fine-tuning stage: Llama 3 style SFT (assistant-only loss, lr 1e-5) on TRL's SFTTrainer.

herd supplies the data path (validated chat rows, core.chat masks, best-fit packing with
per-conversation attention) and the atomic, resumable output; TRL runs the optimisation.

    from herd.sft import SFTConfig, train_sft
    out_dir = train_sft(SFTConfig(model="base/", data=["chats.jsonl"], output_dir="sft/"))
"""

from herd.sft.config import LoraSettings, SFTConfig

__all__ = ["LoraSettings", "SFTConfig", "train_sft"]


def __getattr__(name: str):
    # train_sft pulls in torch/transformers/trl; importing herd.sft for the config must stay cheap.
    if name == "train_sft":
        from herd.sft.train import train_sft

        return train_sft
    raise AttributeError(name)
