// Small scripted classifiers, one per graph pattern a real model has (residual addition,
// concatenation, depthwise chain, split, input normalisation with squeeze-excitation), written
// as TorchScript source the way scripted torch.nn modules read.
#pragma once

#include <torch/script.h>

#include <string>

#include "edgefleet/model_card.h"

namespace edgefleet {

using torch::jit::Module;

// A module as scripted torch.nn has it: with the `training` flag train()/eval() set.
inline Module module(const std::string& name) {
  Module m(name);
  m.register_attribute("training", c10::BoolType::get(), false);
  return m;
}

// A batch norm as scripted torch.nn writes it (a submodule: parameters reached by paths).
inline Module batch_norm(int channels, int seed) {
  Module m = module("BatchNorm2d");
  torch::manual_seed(seed);
  m.register_parameter("weight", torch::rand({channels}) + 0.5, false);
  m.register_parameter("bias", torch::randn({channels}) * 0.1, false);
  m.register_buffer("running_mean", torch::randn({channels}) * 0.1);
  m.register_buffer("running_var", torch::rand({channels}) + 0.5);
  m.define(
      "def forward(self, x):\n"
      "  return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, self.training, 0.1, 1e-5, False)\n");
  return m;
}

inline void conv_weight(Module& m, const std::string& name, int out, int in_per_group, int kernel, int seed, bool bias = true) {
  torch::manual_seed(seed);
  m.register_parameter(name + "_w", torch::randn({out, in_per_group, kernel, kernel}) * 0.3, false);
  if (bias) m.register_parameter(name + "_b", torch::randn({out}) * 0.1, false);
}

// conv -> bn -> relu -> conv -> bn, plus the block's input (a residual addition), -> relu ->
// global mean -> linear.
inline Module residual_net() {
  Module m = module("ResidualNet");
  conv_weight(m, "c1", 8, 3, 3, 1);
  m.register_module("bn1", batch_norm(8, 2));
  conv_weight(m, "c2", 8, 8, 3, 3);
  m.register_module("bn2", batch_norm(8, 4));
  m.register_parameter("fc_w", torch::randn({5, 8}) * 0.3, false);
  m.register_parameter("fc_b", torch::randn({5}) * 0.1, false);
  m.define(R"(
def forward(self, x):
  a = torch.relu(self.bn1.forward(torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [1, 1], [1, 1], 1)))
  b = self.bn2.forward(torch.conv2d(a, self.c2_w, self.c2_b, [1, 1], [1, 1], [1, 1], 1))
  y = torch.relu(b + a)
  return torch.linear(torch.mean(y, [2, 3]), self.fc_w, self.fc_b)
)");
  return m;
}

// SqueezeNet's Fire: a squeeze conv, two expand convs concatenated, then a conv and pooling.
inline Module fire_net() {
  Module m = module("FireNet");
  conv_weight(m, "sq", 4, 3, 1, 1);
  conv_weight(m, "e1", 6, 4, 1, 2);
  conv_weight(m, "e3", 6, 4, 3, 3);
  conv_weight(m, "head", 5, 12, 1, 4);
  m.define(R"(
def forward(self, x):
  s = torch.relu(torch.conv2d(x, self.sq_w, self.sq_b, [1, 1], [0, 0], [1, 1], 1))
  a = torch.relu(torch.conv2d(s, self.e1_w, self.e1_b, [1, 1], [0, 0], [1, 1], 1))
  b = torch.relu(torch.conv2d(s, self.e3_w, self.e3_b, [1, 1], [1, 1], [1, 1], 1))
  y = torch.conv2d(torch.cat([a, b], 1), self.head_w, self.head_b, [1, 1], [0, 0], [1, 1], 1)
  return torch.flatten(torch.adaptive_avg_pool2d(y, [1, 1]), 1)
)");
  return m;
}

// MobileNet's depthwise chain: a pointwise conv, two depthwise convs on its channels (stride 2,
// then 1), a pointwise conv, and a flatten over 2x2 positions into a linear layer.
inline Module depthwise_net() {
  Module m = module("DepthwiseNet");
  conv_weight(m, "pw1", 8, 3, 1, 1, false);
  m.register_module("bn1", batch_norm(8, 2));
  conv_weight(m, "dw1", 8, 1, 3, 3, false);
  m.register_module("bn2", batch_norm(8, 4));
  conv_weight(m, "dw2", 8, 1, 3, 5);
  conv_weight(m, "pw2", 6, 8, 1, 6);
  m.register_parameter("fc_w", torch::randn({4, 6 * 4}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  a = torch.clamp(self.bn1.forward(torch.conv2d(x, self.pw1_w, None, [1, 1], [0, 0], [1, 1], 1)), 0.0, 6.0)
  a = torch.hardtanh(self.bn2.forward(torch.conv2d(a, self.dw1_w, None, [2, 2], [1, 1], [1, 1], 8)), 0.0, 6.0)
  a = torch.relu(torch.conv2d(a, self.dw2_w, self.dw2_b, [1, 1], [1, 1], [1, 1], 8))
  a = torch.relu(torch.conv2d(a, self.pw2_w, self.pw2_b, [1, 1], [0, 0], [1, 1], 1))
  a = torch.max_pool2d(a, [2, 2], [2, 2], [0, 0], [1, 1], False)
  return torch.linear(torch.flatten(a, 1), self.fc_w, None)
)");
  return m;
}

// A split along the channels (a gated unit): its halves are multiplied, so the conv before it
// keeps every channel; the layers after it can still be pruned.
inline Module split_net() {
  Module m = module("SplitNet");
  conv_weight(m, "c1", 8, 3, 3, 1);
  conv_weight(m, "c2", 6, 4, 1, 2);
  m.register_parameter("fc_w", torch::randn({3, 6}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  h = torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [1, 1], [1, 1], 1)
  p, q = torch.chunk(h, 2, 1)
  g = p * torch.sigmoid(q)
  y = torch.relu(torch.conv2d(g, self.c2_w, self.c2_b, [1, 1], [0, 0], [1, 1], 1))
  return torch.linear(torch.mean(y, [-1, -2]), self.fc_w, None)
)");
  return m;
}

// Input normalisation with per-channel tensors, then a squeeze-excitation block scaling a
// conv's channels by a gate computed from them.
inline Module normalised_se_net() {
  Module m = module("NormalisedSENet");
  m.register_buffer("mean", torch::tensor({0.485f, 0.456f, 0.406f}).reshape({1, 3, 1, 1}));
  m.register_buffer("std", torch::tensor({0.229f, 0.224f, 0.225f}).reshape({1, 3, 1, 1}));
  conv_weight(m, "c1", 8, 3, 3, 1);
  conv_weight(m, "se1", 2, 8, 1, 2);
  conv_weight(m, "se2", 8, 2, 1, 3);
  m.register_parameter("fc_w", torch::randn({4, 8}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  x = (x - self.mean) / self.std
  a = torch.relu(torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [1, 1], [1, 1], 1))
  s = torch.adaptive_avg_pool2d(a, [1, 1])
  s = torch.sigmoid(torch.conv2d(torch.relu(torch.conv2d(s, self.se1_w, self.se1_b, [1, 1], [0, 0], [1, 1], 1)), self.se2_w, self.se2_b, [1, 1], [0, 0], [1, 1], 1))
  y = a * s
  return torch.linear(torch.reshape(torch.adaptive_avg_pool2d(y, [1, 1]), [y.size(0), -1]), self.fc_w, None)
)");
  return m;
}

// Saves `m` (in eval mode) as DIR/NAME.pt with its card — an 8x8 RGB input in [0, 1] and
// `classes` outputs — and returns the card as read back.
inline ModelCard save_scripted_classifier(Module m, const std::string& dir, const std::string& name, int classes) {
  m.eval();
  m.save(dir + "/" + name + ".pt");
  ModelCard card;
  card.name = name;
  card.task = "test";
  card.file = name + ".pt";
  card.classes = classes;
  card.input.height = 8;
  card.input.width = 8;
  if (Status written = write_card(card, dir + "/" + name + ".json"); !written.is_ok()) throw Error(written);
  return read_card(dir + "/" + name + ".json").value();
}

}  // namespace edgefleet
