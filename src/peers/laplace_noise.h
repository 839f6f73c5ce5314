// Internal: the Laplace mechanism on images, for the models devices send in private mode.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace edgefleet {

// `images` (values in [0, 1]) plus Laplace noise of scale 1/epsilon per value, clamped back
// to [0, 1]: epsilon-differential privacy per pixel (sensitivity 1); a whole image of n
// pixels composes to n * epsilon. Deterministic in `seed`.
inline torch::Tensor laplace_noised(const torch::Tensor& images, double epsilon, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  // Inverse CDF: u ~ U(-1/2, 1/2), x = -b sign(u) ln(1 - 2|u|).
  const auto u = at::rand(images.sizes(), generator) - 0.5;
  const auto noise = -(1.0 / epsilon) * u.sign() * torch::log1p(-2 * u.abs().clamp_max(0.5 - 1e-7));
  return (images + noise).clamp(0, 1);
}

}  // namespace edgefleet
