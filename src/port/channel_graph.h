// Internal: the coupled channel dimensions of any TorchScript classifier, read from its
// inlined forward graph (the idea of Torch-Pruning's DepGraph), and physical pruning of them.
//
// Every channel of every activation gets an id; operations tie ids together (a batch norm's
// output channels are its input's, a residual addition ties its two inputs channel by
// channel, a concatenation lays its inputs' ids side by side, flatten repeats each id over
// the spatial positions a linear layer reads). Channels whose ids end up tied are removed
// together; channels with the same set of parameter slices form one group (one conv's
// outputs, the blocks of a residual stream). A parameter slice is kept or dropped with its
// channel. The model's input and logits, and the channels a split or a grouped convolution
// divides, are never pruned. An operation the analysis does not know is refused by name.
//
// Pruning clones the module, slices every member parameter and rewrites the graph's depthwise
// group counts: the result is a smaller dense TorchScript module with the source's code, whose
// logits equal the source's when the removed channels' activations were zero. A removed
// channel's mean (on a probe batch of uniform [0, 1) inputs) is folded into its consumers'
// bias, or the running mean of the batch norm after them, so constant channels cost nothing.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgefleet/arch_cost.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct GraphChannelGroup {
  std::string name;      // the module that writes it, e.g. "features.3.conv.0" ("#2" on a repeat)
  int channels = 0;
  bool prunable = true;  // false: the input, the logits, channels a split or grouped conv divides
  std::vector<std::string> members;  // "parameter:dim" slices, e.g. "features.3.conv.1.weight:0"
};

// One kernel of the forward pass at full width, as a latency model sees it: conv (with the
// batch norm, and a ReLU/ReLU6/clamp, that the optimised graph runs with it), dwconv, linear,
// add, concat, pool, pad, elementwise (any other activation, or one no conv precedes).
struct KernelUse {
  std::string kind;
  std::int64_t macs = 0;
  std::int64_t input_elements = 0;
  std::int64_t output_elements = 0;
  std::int64_t weights = 0;
  int kernel = 1;  // conv window side
  int stride = 1;
  // What its size follows when channels are pruned: a conv's or linear's layer (an index into
  // the analysis's layers), else the channel ids of its input and output and their positions.
  int layer = -1;
  std::vector<int> in_ids, out_ids;
  std::int64_t in_positions = 0, out_positions = 0;
};

class ChannelGraph {
 public:
  // `input_shape`: one NCHW input, e.g. {1, 3, 224, 224}; the forward pass runs once on it (in
  // eval mode) to learn the activations' shapes. Fails with unsupported naming the operation
  // the analysis does not know, or invalid_argument when the module does not run.
  // `probe`: model inputs (N x C x H x W, e.g. preprocessed training photos) on which each
  // channel's mean is measured — what pruning folds into the next layer for a removed
  // channel; undefined = a batch of uniform noise (fine for shapes, poor means for a real model).
  static Expected<ChannelGraph> analyse(const torch::jit::Module& module, const std::vector<std::int64_t>& input_shape,
                                        const torch::Tensor& probe = torch::Tensor());

  // The analysed copy of the module (forward inlined, settings specialised): the model to train
  // and prune. Its tensors are the ones saliency() and prune() read, so training it in place
  // (an optimiser's steps, batch-norm statistics) is seen by both.
  torch::jit::Module module() const;
  const std::vector<std::int64_t>& input_shape() const;
  // The probe inputs the means were measured on (undefined: noise), for re-analysing a pruned copy.
  const torch::Tensor& probe() const;

  const std::vector<GraphChannelGroup>& groups() const;
  // Full widths of the prunable groups, by name.
  std::map<std::string, int> widths() const;
  // The cost with the named groups at the given widths (other groups whole): MACs and
  // parameters exactly as the pruned model would have them; activations of conv/linear layers.
  ArchCost cost(const std::map<std::string, int>& widths = {}) const;
  // Per prunable group, each channel's importance. Analysed with probe inputs (real photos):
  // what removing it moves in the conv/linear layers that read it, on those inputs (its
  // standard deviation there times the L2 norm of the weights reading it, summed over the
  // readers). Otherwise: the spread of its output through the batch norms that write it
  // (|gamma| * sqrt(var / (var + eps)), the largest), else the mean L1 norm of the conv/linear
  // rows that write it.
  std::map<std::string, torch::Tensor> saliency() const;
  // The forward pass as kernels, in graph order (full widths).
  const std::vector<KernelUse>& kernels() const;
  // The same kernels with the named groups at the given widths (others whole): the kernels
  // of the pruned model, without pruning it.
  std::vector<KernelUse> kernels(const std::map<std::string, int>& widths) const;
  // Per prunable group, each channel's mean L1 norm of the conv/linear rows that write it.
  std::map<std::string, torch::Tensor> filter_l1_norms() const;
  // Per prunable group, the scales (gamma) of the batch norms that cover exactly its channels,
  // in its channel order (the module's own tensors: shrinking them in place prunes).
  std::map<std::string, std::vector<torch::Tensor>> batch_norm_scales() const;
  // A pruned copy keeping, per named group, the listed channels (ascending, distinct, at least
  // one); other groups stay whole. Fails with invalid_argument for unknown or unprunable groups
  // or bad indices.
  Expected<torch::jit::Module> prune(const std::map<std::string, std::vector<std::int64_t>>& keep) const;

  struct Impl;  // opaque: the analysis, defined in channel_graph.cpp

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace edgefleet
