// Hardening: stability training (instability paper §9.1 after Zheng et al. 2016, and
// SysNoise's mixed training). Fine-tunes a model with L = L0 + alpha * Ls, where L0 is cross
// entropy on an input x and Ls compares the model on x and on a noisy x' (KL divergence of the
// predictions, or squared euclidean distance of the embeddings: the input of the last fully
// connected layer). Noise and alpha are chosen by a grid search on a validation split; the
// result is measured before and after on environments training never saw.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "edgefleet/dataset.h"
#include "edgefleet/finetune.h"
#include "edgefleet/model_card.h"
#include "edgefleet/stability_run.h"

namespace edgefleet {

enum class NoiseKind {
  kNone,        // fine-tuning alone (the paper's "no noise" row)
  kGaussian,    // x' = x + N(0, sigma2) per pixel, pixels in [0, 1]
  kDistortion,  // x' = x with random brightness, contrast, saturation, hue, JPEG quality
  kPaired,      // x' = the same picture through a training device's pipeline
  kSubsample,   // x' = one of only `per_class` pictures of x's class from a training device
  kMixed,       // x itself goes through a random training pipeline (or none); no stability loss
};
enum class StabilityLoss { kNone, kKl, kEmbedding };

std::string noise_kind_name(NoiseKind kind);
Expected<NoiseKind> parse_noise_kind(const std::string& name);
std::string stability_loss_name(StabilityLoss loss);
Expected<StabilityLoss> parse_stability_loss(const std::string& name);

struct HardenSetting {
  NoiseKind noise = NoiseKind::kNone;
  StabilityLoss loss = StabilityLoss::kNone;  // kNone exactly for noise kNone and kMixed
  double alpha = 0.0;
  double sigma2 = 0.0;    // kGaussian
  double strength = 0.0;  // kDistortion, in (0, 1]
  int per_class = 0;      // kSubsample
};

// "paired kl alpha=1", "gaussian embedding alpha=0.01 sigma2=0.04", "none".
std::string harden_setting_to_string(const HardenSetting& setting);
// The hyper-parameter column of the paper's Table 6: "alpha=0.01 sigma2=0.04", "N/A".
std::string hyper_parameters(const HardenSetting& setting);

struct HardenGrid {
  std::vector<NoiseKind> noises{NoiseKind::kGaussian, NoiseKind::kDistortion, NoiseKind::kPaired,
                                NoiseKind::kSubsample, NoiseKind::kMixed};
  std::vector<StabilityLoss> losses{StabilityLoss::kKl, StabilityLoss::kEmbedding};
  std::vector<double> kl_alphas{0.3, 1.0, 3.0};
  std::vector<double> embedding_alphas{0.01, 0.1, 1.0};
  std::vector<double> sigma2s{0.01, 0.04};
  std::vector<double> strengths{0.5, 1.0};
  std::vector<int> per_class{10};
};

// The no-noise baseline first, then every noise x loss x alpha x noise parameter (mixed
// training once, without a loss). Fails with invalid_argument for an empty or bad list.
Expected<std::vector<HardenSetting>> grid_settings(const HardenGrid& grid);

struct FineTuneBudget {
  int epochs = 3;
  int batch_size = 64;
  double learning_rate = 0.005;  // cosine decay to 0 over the epochs
  // SGD with Nesterov momentum 0.9, or AdamW (no weight decay): see FinetuneOptimizer for why
  // converted ImageNet models move further per step under AdamW at a safe learning rate.
  FinetuneOptimizer optimizer = FinetuneOptimizer::kSgd;
  std::size_t train_images = 6000;
  std::uint64_t seed = 1;
  // Batch norms keep their running statistics while fine-tuning (eval mode): a pretrained
  // ImageNet model fine-tuned on a few classes in small batches would otherwise re-estimate
  // them from batches of those classes alone.
  bool frozen_batch_norm = false;
  // The task loss L0: cross entropy with the labels (the paper's), or, with `distill`, the KL
  // divergence from the base model's answer on the clean picture. Fine-tuning a 1000-way model
  // on a few classes with labels specialises it (confident answers rarely flip, whatever the
  // stability loss); distilled, the no-noise baseline keeps the base's answers, so a change in
  // instability is the stability loss's doing and the model keeps its other classes.
  bool distill = false;
};

struct HardenOptions {
  HardenGrid grid;
  FineTuneBudget budget;
  // Sources of paired, subsample and mixed noise; the grid search's validation environments.
  std::vector<StabilityEnvironment> train_environments;
  // Used only to measure the result. OpenCV DNN settings run on libtorch (hardened models
  // have no ONNX copy), for the base model too; the result notes it.
  std::vector<StabilityEnvironment> heldout_environments;
  std::size_t validation_images = 1000;  // spread evenly over each split (at most)
  std::size_t test_images = 2000;
  // The chosen setting's validation top-1 may be at most this far (a fraction) below the base
  // model's; among those, the lowest validation instability wins.
  double max_accuracy_drop = 0.01;
  std::string work_dir;   // caches and finished candidates: a rerun resumes from them
  std::string out_model;  // the hardened .pt; its card is written beside it (.json)
  int threads = 0;
  std::function<void(const std::string&)> log;
};

struct ModelEvaluation {
  double top1 = 0, top3 = 0, top5 = 0;  // clean: the card's own preprocessing of the test data
  double heldout_instability = 0;       // top-1, across the held-out environments
  double heldout_instability_top3 = 0;
  double heldout_disagreement = 0;
  double heldout_mean_top1 = 0;
  std::vector<double> heldout_top1;     // per held-out environment
};

struct CandidateResult {
  HardenSetting setting;
  double validation_top1 = 0;          // clean
  double validation_instability = 0;   // across the reference and the training environments
  double train_seconds = 0;
  std::string model_file;
  bool resumed = false;                // found finished in the work folder
  bool evaluated = false;              // `test` is filled
  ModelEvaluation test;
};

struct HardenResult {
  std::string base_model;
  std::vector<std::string> train_environments, heldout_environments;
  double base_validation_top1 = 0, base_validation_instability = 0;
  ModelEvaluation before;
  std::vector<CandidateResult> candidates;  // grid order; candidates[0] is the no-noise baseline
  std::vector<int> table_rows;              // per (noise, loss): the candidate best on validation
  int chosen = 0;
  ModelCard card;                           // of the hardened model
  std::vector<std::string> notes;
};

// Three disjoint splits: fine-tuning, the grid search's validation, and the final measurement.
struct HardenData {
  std::shared_ptr<const Dataset> train, validation, test;
};
// From a dataset spec: "fashion-mnist" = its train split (the last 1000 images for validation)
// and its test split; an image folder = items i with i % 5 in {0, 1} for test, 2 for
// validation, 3 and 4 for training (class-balanced: folders are listed class by class).
// With `test_spec` (an image folder, e.g. imagenette's val beside its train), the data
// folder's items i % 5 == 2 validate, the others train, and the test folder alone is measured.
Expected<HardenData> hardening_splits(const std::string& data_spec, const std::string& test_spec = "");

// Fine-tunes `base` on data.train and measures on data.test. Fails with invalid_argument for
// an empty grid, no training environment, fewer than two held-out environments, an
// environment both trained on and held out, empty splits; unsupported for non-TorchScript.
Expected<HardenResult> harden_model(const ModelCard& base, const HardenData& data, const HardenOptions& options);

// The paper's Table 6: rows noise x loss (best alpha on validation), columns hyper-parameters,
// validation and held-out figures, with the base model and the chosen row marked.
std::string hardening_table_markdown(const HardenResult& result);
nlohmann::json hardening_result_json(const HardenResult& result);
// Writes DIR/result.json, DIR/table.md, DIR/report.html and its SVG plots (when gnuplot is
// installed).
Status write_hardening_report(const HardenResult& result, const std::string& dir);

}  // namespace edgefleet
