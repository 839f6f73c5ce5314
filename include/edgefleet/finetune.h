// FinetuneSettings: the recipe of one SGD fine-tuning run with optional distillation, shared
// by porting's fine-tuning, peer tuning at the edge and multi-branch models.
#pragma once

namespace edgefleet {

// SGD with Nesterov momentum, or AdamW: Adam's step on a weight is normalised by its
// gradient's running size, so it does not grow with the scale a following batch norm
// multiplies the weight by (converted models carry folded filter scales of up to ~145 there,
// and SGD's effective step grows with their square).
enum class FinetuneOptimizer { kSgd, kAdamW };

struct FinetuneSettings {
  int steps = 300;
  int batch = 64;
  double learning_rate = 0.01;
  bool distill = true;          // knowledge distillation from the base model
  double distill_weight = 0.5;  // of the KL term; the rest is cross-entropy on labels
  double temperature = 2.0;
  // Random horizontal flips and shifts of up to 1/16 of the side: with few images (a folder
  // of photos rather than a training set), distillation then sees more than it memorises.
  bool augment = false;
  // 0: run `steps` steps. Otherwise, with validation images (held out of the training ones),
  // measure top-1 before training and every `check_every` steps, stop after `patience`
  // checks without improvement (or at `steps`), and keep the best weights seen.
  int patience = 0;
  int check_every = 25;
  // A check gains only when top-1 rises by more than this (a fraction, e.g. 0.01 = one point):
  // on a few hundred held-out photos a one-photo rise is noise, and would restart the patience.
  double min_gain = 0.0;
  // Train with the model in eval mode: batch norms keep their running statistics (and
  // dropout is off) while every weight learns. For a few hundred photos, and for converted
  // models whose batch norms only carry folded scales (re-estimating their statistics from
  // batches changes the function at the first step).
  bool frozen_batch_norm = false;
  FinetuneOptimizer optimizer = FinetuneOptimizer::kSgd;
};

}  // namespace edgefleet
