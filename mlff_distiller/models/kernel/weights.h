// The named weights of a student's network as the fused PaiNN (painn.h) reads them, and their
// check. Python writes them in mlff_distiller/models/kernel/weights.py (kernel_weights): a
// dictionary from names such as "interactions.0.context_in.weight_t" to tensors. Before anything
// is read, read_weights() checks every name the network needs, every shape against the network's
// sizes, the dtype and the device, and that no other name is present; a stale or tampered set of
// weights is refused with a message naming the weight, never read out of bounds.
//
// Sizes: S species and F features from "embedding.weight" (S x F), R radial basis functions from
// "basis.frequencies" (R), H hidden readout features from "readout_in.bias" (H), and the number
// of layers from the caller (the model file's or operator's own count).

#pragma once

#include <ATen/ATen.h>
#include <ATen/core/Dict.h>

#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace mlffd {

// A linear map y = x W^T + b as the network multiplies it: "<name>.weight_t" W^T (in x out) for
// forward products y = x W^T, "<name>.weight" W (out x in) for reverse products g_x = g_y W, and
// "<name>.bias" b (out) where the map has one. Every product is then C = A B with B row-major.
struct Linear {
  at::Tensor weight_t, weight, bias;
};

// One interaction block. The filter's input is the radial features and the envelope (R + 1): the
// envelope's column carries the bias. mix_u and mix_v have no bias.
struct LayerWeights {
  Linear context_in, context_out, filter, mix_u, mix_v, gate_in, gate_out;
};

struct Weights {
  int64_t species = 0, features = 0, basis = 0, hidden = 0, layers = 0;
  at::Tensor embedding;            // (S, F)
  at::Tensor frequencies;          // (R), 1/Å: basis function b is sin(frequency_b r) / r
  std::vector<LayerWeights> layer;
  Linear readout_in;               // F -> H, with bias
  at::Tensor readout_out;          // (1, H)
  at::Tensor readout_out_bias;     // (1)
  at::Tensor energy_scale;         // (1)
  at::Tensor reference_energies;   // (S), eV
};

using NamedTensors = c10::Dict<std::string, at::Tensor>;

namespace detail {

inline std::string shape_text(at::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (size_t k = 0; k < shape.size(); ++k) out << (k ? ", " : "") << shape[k];
  out << "]";
  return out.str();
}

// Takes named tensors out of the dictionary, each checked, and remembers which it took.
class Reader {
 public:
  Reader(const NamedTensors& named, at::ScalarType dtype) : named_(named), dtype_(dtype) {}

  // The tensor called name, contiguous, checked to have exactly this shape; sizes describes where
  // the expected shape comes from, for the message.
  at::Tensor take(const std::string& name, std::vector<int64_t> shape) {
    const at::Tensor t = find(name, static_cast<int64_t>(shape.size()));
    TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), "mlffd: weight '", name, "' has shape ", shape_text(t.sizes()),
                ", expected ", shape_text(shape), " (", sizes_, "); export the model again");
    return t.contiguous();
  }

  // The tensor called name, checked for its number of dimensions only: a size of the network.
  at::Tensor size_source(const std::string& name, int64_t dims) { return find(name, dims); }

  void describe_sizes(std::string sizes) { sizes_ = std::move(sizes); }

  // Refuses any name that was not taken.
  void check_nothing_else() const {
    for (const auto& entry : named_)
      TORCH_CHECK(taken_.count(entry.key()), "mlffd: unexpected weight '", entry.key(),
                  "' (the network reads no such name); the file was written by another version of mlff-distiller "
                  "or altered; export the model again");
  }

  Linear linear(const std::string& name, int64_t in, int64_t out, bool bias) {
    Linear map;
    map.weight_t = take(name + ".weight_t", {in, out});
    map.weight = take(name + ".weight", {out, in});
    if (bias) map.bias = take(name + ".bias", {out});
    return map;
  }

 private:
  at::Tensor find(const std::string& name, int64_t dims) {
    const auto found = named_.find(name);
    TORCH_CHECK(found != named_.end(), "mlffd: weight '", name,
                "' is missing; the file was written by another version of mlff-distiller or altered; "
                "export the model again");
    const at::Tensor t = found->value();
    TORCH_CHECK(t.scalar_type() == dtype_, "mlffd: weight '", name, "' is ", t.scalar_type(), ", expected ", dtype_,
                " (the dtype of the positions or edge vectors)");
    TORCH_CHECK(t.device().is_cpu(), "mlffd: weight '", name, "' is on ", t.device(), "; the kernel runs on the CPU only");
    TORCH_CHECK(t.dim() == dims, "mlffd: weight '", name, "' has shape ", shape_text(t.sizes()), ", expected ", dims,
                " dimensions");
    taken_.insert(name);
    return t;
  }

  const NamedTensors& named_;
  at::ScalarType dtype_;
  std::string sizes_;
  std::set<std::string> taken_;
};

}  // namespace detail

// The weights of a network of `layers` interaction blocks, every one checked (see the top of this
// file), in dtype (that of the positions or edge vectors the network will be given).
inline Weights read_weights(const NamedTensors& named, int64_t layers, at::ScalarType dtype) {
  TORCH_CHECK(layers >= 1, "mlffd: a network needs at least one layer, not ", layers);
  detail::Reader reader(named, dtype);
  Weights w;
  const at::Tensor embedding = reader.size_source("embedding.weight", 2);
  w.species = embedding.size(0);
  w.features = embedding.size(1);
  w.basis = reader.size_source("basis.frequencies", 1).size(0);
  w.hidden = reader.size_source("readout_in.bias", 1).size(0);
  w.layers = layers;
  TORCH_CHECK(w.species > 0 && w.features > 0 && w.basis > 0 && w.hidden > 0,
              "mlffd: the weights describe an empty network");
  std::ostringstream sizes;
  sizes << w.species << " species, " << w.features << " features, " << w.basis << " radial basis functions, "
        << w.hidden << " hidden readout features, " << layers << " layers";
  reader.describe_sizes(sizes.str());

  const int64_t s = w.species, f = w.features, r = w.basis, h = w.hidden;
  w.embedding = reader.take("embedding.weight", {s, f});
  w.frequencies = reader.take("basis.frequencies", {r});
  for (int64_t l = 0; l < layers; ++l) {
    const std::string prefix = "interactions." + std::to_string(l) + ".";
    LayerWeights block;
    block.context_in = reader.linear(prefix + "context_in", f, f, true);
    block.context_out = reader.linear(prefix + "context_out", f, 3 * f, true);
    block.filter = reader.linear(prefix + "filter", r + 1, 3 * f, false);
    block.mix_u = reader.linear(prefix + "mix_u", f, f, false);
    block.mix_v = reader.linear(prefix + "mix_v", f, f, false);
    block.gate_in = reader.linear(prefix + "gate_in", 2 * f, f, true);
    block.gate_out = reader.linear(prefix + "gate_out", f, 3 * f, true);
    w.layer.push_back(std::move(block));
  }
  w.readout_in = reader.linear("readout_in", f, h, true);
  w.readout_out = reader.take("readout_out.weight", {1, h});
  w.readout_out_bias = reader.take("readout_out.bias", {1});
  w.energy_scale = reader.take("energy_scale", {1});
  w.reference_energies = reader.take("reference_energies", {s});
  reader.check_nothing_else();
  return w;
}

}  // namespace mlffd
