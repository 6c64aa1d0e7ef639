"""Fine-tune a tiny BERT sentiment classifier with the Hugging Face Trainer, with autolog watching.

Nothing is downloaded: the tokenizer (a dozen words), the model (a BertConfig with 8 hidden units)
and the reviews are made in code. The only autolog line is Task.init():
- every checkpoint-<step> folder the Trainer writes (weights, config, tokenizer, optimizer,
  scheduler, rng state, trainer state) is a snapshot of ONE model named after output_dir, whose
  iteration is the global step; folders that save_total_limit deletes stay stored;
- trainer.save_model() with the tokenizer saved next to it is that model's final snapshot (the
  checkpoint-* folders beside it are not part of it, nor the metrics and trainer state written after).
Run hf_evaluate.py afterwards to see lineage (`--model runs/hf-sentiment` for the final save).

    python examples/hf_finetune.py [--steps 60] [--save-steps 20] [--out runs/hf-sentiment]
"""
from __future__ import annotations

import argparse

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast, Trainer, TrainingArguments

from autolog import Task

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "the", "film", "movie", "plot", "great", "good", "fun",
         "bad", "awful", "dull", "very", "not"]
POSITIVE, NEGATIVE = ["great", "good", "fun"], ["bad", "awful", "dull"]
NOUNS = ["film", "movie", "plot"]
# (text, label): "a great film" is positive, "the dull plot" negative; "very" changes nothing.
REVIEWS = [(f"{article} {very}{word} {noun}", int(word in POSITIVE))
           for article in ("a", "the") for very in ("", "very ") for word in POSITIVE + NEGATIVE for noun in NOUNS]
TRAIN, TEST = REVIEWS[::2], REVIEWS[1::2]


def build_tokenizer() -> PreTrainedTokenizerFast:
    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def build_model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=8, num_labels=2)
    return BertForSequenceClassification(config)


def encode(tokenizer: PreTrainedTokenizerFast, reviews: list[tuple[str, int]]) -> list[dict]:
    batch = tokenizer([text for text, _ in reviews], padding="max_length", max_length=6)
    return [{"input_ids": ids, "attention_mask": mask, "labels": label}
            for ids, mask, (_, label) in zip(batch["input_ids"], batch["attention_mask"], reviews)]


def accuracy(model, tokenizer, reviews: list[tuple[str, int]]) -> float:
    model.eval()  # the Trainer leaves it in training mode (dropout)
    batch = tokenizer([text for text, _ in reviews], padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1)
    return (predicted == torch.tensor([label for _, label in reviews])).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--save-steps", type=int, default=20)
    parser.add_argument("--out", default="runs/hf-sentiment")
    args = parser.parse_args()

    task = Task.init(project_name="hf-sentiment", task_name="finetune", output_uri=True, tags=["example"])
    tokenizer, model = build_tokenizer(), build_model()
    training_args = TrainingArguments(
        output_dir=args.out, max_steps=args.steps, save_steps=args.save_steps, save_total_limit=2,
        learning_rate=0.02, per_device_train_batch_size=8, logging_steps=args.save_steps,
        use_cpu=True, report_to=[], disable_tqdm=True, seed=0,
    )
    task.connect({"steps": args.steps, "save_steps": args.save_steps, "lr": training_args.learning_rate},
                 name="hyperparameters")
    trainer = Trainer(model=model, args=training_args, train_dataset=encode(tokenizer, TRAIN),
                      processing_class=tokenizer)
    result = trainer.train()
    trainer.save_model()  # into output_dir, next to the checkpoint-* folders
    tokenizer.save_pretrained(args.out)  # save_model wrote it too; saved again it is still one snapshot
    trainer.save_metrics("train", result.metrics)  # these go into output_dir too, but are not the model's
    trainer.save_state()
    print(f"held-out reviews: accuracy {accuracy(model, tokenizer, TEST):.3f}")

    task.flush()  # the final folder is stored once its last file is written: wait for it
    for output in task.models["output"]:
        print(f"\noutput model {output.name!r} ({output.id[:8]}, {output.framework}):")
        for snap in output.snapshots:
            names = sorted(f["name"] for f in snap.files)
            print(f"  snapshot {snap.seq}: global step {snap.iteration}, {snap.status}, files {names}")
    task.close()
    print(f"\ntask {task.id} done. Look at it with:")
    print(f"  autolog task show {task.id[:8]}")
    print(f"  python examples/hf_evaluate.py --out {args.out}")


if __name__ == "__main__":
    main()
