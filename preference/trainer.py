"""TRL's DPOTrainer with two pass-throughs for data herd has already prepared.

TRL 1.16's DPOTrainer has no ``skip_prepare_dataset`` switch (its SFTTrainer does), so it would
re-tokenize every pair from text, losing herd's loss masks and the sampler's recorded token ids;
and with ``precompute_ref_log_probs`` it would run a reference pass even when the sampler's
log-probs already provide the reference. Both hooks defer to TRL for anything herd did not build.
"""

from __future__ import annotations

from trl import DPOTrainer


class HerdDPOTrainer(DPOTrainer):
    """DPOTrainer that accepts pre-tokenized pairs and pre-supplied reference log-probs."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "prompt_ids" in dataset.column_names and "chosen_loss_mask" in dataset.column_names:
            return dataset  # tokenized by herd.preference.dpo_data (masks, recorded ids)
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    def _precompute_ref_logps(self, dataset, name, batch_size):
        if "ref_chosen_logps" in dataset.column_names:
            return dataset  # the sampler's log-probs, summed under the same loss mask
        return super()._precompute_ref_logps(dataset, name, batch_size)
