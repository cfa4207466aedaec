// pair_style mlffd: runs an mlff-distiller student exported with `mlffd export --engine lammps`.
//
//   units metal
//   newton on                      (the default)
//   pair_style mlffd water.pt
//   pair_coeff * * O H             (element of each atom type, in type order)
//
// The student is a message-passing network of L layers: an atom's energy depends on atoms
// up to L x cutoff away. The pair style runs one layer at a time on the local atoms and
// forward-communicates the new per-atom features to the ghost atoms before the next layer,
// so ghost atoms are needed only one cutoff (+ skin) deep. The edges' geometry (radial features,
// unit vectors) is computed once per step and shared by the layers. The backward pass walks the
// layers in reverse and reverse-communicates the gradients that land on ghost features; the
// geometry gradients of all layers are summed and taken back to the edge vectors x_j - x_i in
// one pass, giving forces and the virial (global and per atom). See
// mlff_distiller/export/lammps.py for the model side.
//
// Built as a LAMMPS plugin by `mlffd lammps build`; loaded through the `lammps.plugins` entry
// point of the mlff-distiller Python package.

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "pair.h"
#include "update.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <regex>
#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairMLFFD : public Pair {
 public:
  explicit PairMLFFD(LAMMPS *lmp);
  ~PairMLFFD() override;
  void compute(int eflag, int vflag) override;
  void settings(int narg, char **arg) override;
  void coeff(int narg, char **arg) override;
  void init_style() override;
  double init_one(int i, int j) override;
  int pack_forward_comm(int n, int *list, double *buf, int pbc_flag, int *pbc) override;
  void unpack_forward_comm(int n, int first, double *buf) override;
  int pack_reverse_comm(int n, int first, double *buf) override;
  void unpack_reverse_comm(int n, int *list, double *buf) override;

 private:
  void allocate();
  void load_model(const std::string &path);
  torch::Tensor feature_buffer(int layer, int nall);

  torch::jit::Module model;
  std::string model_path;
  double cutoff = 0.0;
  int layers = 0;
  int width = 0;                          // doubles per atom in each feature exchange
  std::vector<std::string> symbols;       // elements of the model, by species index
  std::vector<int64_t> type_species;      // LAMMPS type (1-based) -> species index
  double *comm_data = nullptr;            // rows (atom-major, `width` wide) being communicated

  // reused between steps to keep allocation out of compute()
  std::vector<int64_t> species, src, dst;
  std::vector<double> vectors;
  std::vector<torch::Tensor> features;    // per layer input: (capacity, width) float64
};

PairMLFFD::PairMLFFD(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;    // the virial is tallied per edge (also per atom)
}

PairMLFFD::~PairMLFFD()
{
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairMLFFD::allocate()
{
  allocated = 1;
  int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
}

void PairMLFFD::settings(int narg, char **arg)
{
  if (narg != 1) error->all(FLERR, "Illegal pair_style mlffd command: expected 'pair_style mlffd MODEL.pt'");
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR,
               "pair_style mlffd requires 'units metal' (Å, eV, ps); this input uses 'units {}'",
               update->unit_style);
  load_model(arg[0]);
}

void PairMLFFD::load_model(const std::string &path)
{
  {
    std::ifstream probe(path);
    if (!probe.good()) error->all(FLERR, "pair_style mlffd: cannot open model file {}", path);
  }
  torch::jit::ExtraFilesMap extra{{"mlffd_metadata.json", ""}};
  try {
    model = torch::jit::load(path, torch::kCPU, extra);
  } catch (const std::exception &) {
    error->all(FLERR, "pair_style mlffd: {} is not a TorchScript model file", path);
  }
  std::smatch found;
  const std::string &metadata = extra["mlffd_metadata.json"];
  if (metadata.empty())
    error->all(FLERR, "pair_style mlffd: {} is not an mlff-distiller model (no metadata)", path);
  if (!std::regex_search(metadata, found, std::regex("\"engine\"\\s*:\\s*\"([^\"]*)\"")) ||
      found[1].str() != "lammps")
    error->all(FLERR,
               "pair_style mlffd: {} was exported for engine '{}', not LAMMPS; "
               "write one with 'mlffd export CHECKPOINT --engine lammps -o MODEL.pt'",
               path, found.size() > 1 ? found[1].str() : std::string("unknown"));
  model.eval();
  for (auto parameter : model.parameters()) parameter.requires_grad_(false);
  cutoff = model.attr("cutoff").toDouble();
  layers = static_cast<int>(model.attr("layers").toInt());
  width = static_cast<int>(model.attr("width").toInt());
  symbols.clear();
  for (const auto &name : model.attr("symbols").toList()) symbols.push_back(name.get().toStringRef());
  model_path = path;
  comm_forward = width;
  comm_reverse = width;
  features.assign(layers, torch::Tensor());

  if (!std::getenv("OMP_NUM_THREADS")) at::set_num_threads(1);
#ifdef __GLIBC__
  // Every step allocates per-edge tensors of tens to hundreds of MB. glibc maps blocks that
  // large afresh from the kernel and unmaps them when freed (and trims the heap), so each step
  // page-faulted them in again: on 6,144 water atoms that system time was about half of the
  // step. Kept on the heap (blocks up to 1 GiB) and never trimmed (-1), the memory is reused
  // from step to step.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, -1);
#endif
  if (comm->me == 0)
    utils::logmesg(lmp,
                   "pair_style mlffd: {} ({} layers, cutoff {} Å, receptive field {} Å, "
                   "{} torch thread(s) per MPI rank)\n",
                   path, layers, cutoff, layers * cutoff, at::get_num_threads());
}

void PairMLFFD::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  int ntypes = atom->ntypes;
  if (narg != 2 + ntypes || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR,
               "Incorrect args for pair_coeff: expected 'pair_coeff * * ELEMENT...' with one element "
               "symbol per atom type ({} types)",
               ntypes);
  std::string supported;
  for (const auto &name : symbols) supported += (supported.empty() ? "" : " ") + name;
  type_species.assign(ntypes + 1, -1);
  for (int itype = 1; itype <= ntypes; itype++) {
    const std::string element(arg[1 + itype]);
    for (size_t s = 0; s < symbols.size(); s++)
      if (symbols[s] == element) type_species[itype] = static_cast<int64_t>(s);
    if (type_species[itype] < 0)
      error->all(FLERR, "pair_coeff: element {} (atom type {}) is not supported by model {}; it supports {}",
                 element, itype, model_path, supported);
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

void PairMLFFD::init_style()
{
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style mlffd requires 'newton on' (newton_pair on): forces on ghost atoms "
                      "must be summed onto their owners");
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

double PairMLFFD::init_one(int, int)
{
  return cutoff;
}

torch::Tensor PairMLFFD::feature_buffer(int layer, int nall)
{
  torch::Tensor &buffer = features[layer];
  if (!buffer.defined() || buffer.size(0) < nall)
    buffer = torch::empty({static_cast<int64_t>(nall * 1.2) + 16, width}, torch::kFloat64);
  return buffer.narrow(0, 0, nall);
}

void PairMLFFD::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  // input shapes change every step (edge count): run the model as scripted, without the
  // profiling executor's re-specialisation; scoped, so other TorchScript users in the
  // process (e.g. OpenMM's TorchForce next to `import lammps`) keep their settings
  torch::jit::GraphOptimizerEnabledGuard unoptimised(false);

  double **x = atom->x;
  double **f = atom->f;
  int *type = atom->type;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const double cutoff_squared = cutoff * cutoff;

  species.resize(nall);
  for (int i = 0; i < nall; i++) species[i] = type_species[type[i]];
  src.clear();
  dst.clear();
  vectors.clear();
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = list->ilist[ii];
    const int *jlist = list->firstneigh[i];
    for (int jj = 0; jj < list->numneigh[i]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      if (dx * dx + dy * dy + dz * dz < cutoff_squared) {
        src.push_back(i);
        dst.push_back(j);
        vectors.push_back(dx);
        vectors.push_back(dy);
        vectors.push_back(dz);
      }
    }
  }
  const int64_t nedges = static_cast<int64_t>(src.size());
  auto species_t = torch::from_blob(species.data(), {nall}, torch::kInt64);
  auto local_species = species_t.narrow(0, 0, nlocal);
  auto src_t = torch::from_blob(src.data(), {nedges}, torch::kInt64);
  auto dst_t = torch::from_blob(dst.data(), {nedges}, torch::kInt64);
  auto vectors_t = torch::from_blob(vectors.data(), {nedges, 3}, torch::kFloat64).requires_grad_(true);

  // the geometry once per step; the layers see it as leaves, whose gradients are summed below
  auto geometry = model.run_method("geometry", vectors_t).toTensorVector();
  std::vector<torch::Tensor> shared;
  for (const auto &g : geometry) shared.push_back(g.detach().requires_grad_(true));

  // forward, layer by layer; inputs[k] holds the features of local + ghost atoms before layer k
  std::vector<torch::Tensor> inputs(layers), outputs(layers);
  {
    torch::NoGradGuard no_grad;
    auto first = feature_buffer(0, nall);
    first.copy_(model.run_method("embed", species_t).toTensor());
    inputs[0] = first;
  }
  torch::Tensor energies;
  for (int k = 0; k < layers; k++) {
    outputs[k] =
        model.run_method("interaction", k, inputs[k], shared[0], shared[1], src_t, dst_t, nlocal).toTensor();
    if (k + 1 < layers) {
      auto next = feature_buffer(k + 1, nall);
      next.narrow(0, 0, nlocal).copy_(outputs[k].detach());
      comm_data = next.data_ptr<double>();
      comm->forward_comm(this);
      inputs[k + 1] = next.detach().requires_grad_(true);
    }
  }
  energies = model.run_method("readout", outputs[layers - 1], local_species).toTensor();
  auto energy = energies.sum();

  // backward, layer by layer, summing ghost gradients onto their owners in between
  std::vector<torch::Tensor> geometry_gradient(shared.size());    // summed over the layers
  torch::Tensor upstream;    // d energy / d outputs[k] for local atoms
  for (int k = layers - 1; k >= 0; k--) {
    std::vector<torch::Tensor> wrt(shared);
    if (k > 0) wrt.push_back(inputs[k]);
    auto grads = (k == layers - 1)
        ? torch::autograd::grad({energy}, wrt, {}, std::nullopt, false, true)
        : torch::autograd::grad({outputs[k]}, wrt, {upstream}, std::nullopt, false, true);
    for (size_t g = 0; g < shared.size(); g++)
      if (grads[g].defined())
        geometry_gradient[g] = geometry_gradient[g].defined() ? geometry_gradient[g] + grads[g] : grads[g];
    if (k > 0) {
      const auto &gradient = grads[shared.size()];
      auto feature_gradient = gradient.defined() ? gradient.contiguous()
                                                 : torch::zeros({nall, width}, torch::kFloat64);
      comm_data = feature_gradient.data_ptr<double>();
      comm->reverse_comm(this);
      upstream = feature_gradient.narrow(0, 0, nlocal);
    }
  }
  // back through the geometry to the edge vectors, once for all layers
  std::vector<torch::Tensor> reached, gradients;    // geometry outputs that received a gradient
  for (size_t g = 0; g < shared.size(); g++)
    if (geometry_gradient[g].defined()) {
      reached.push_back(geometry[g]);
      gradients.push_back(geometry_gradient[g]);
    }
  auto edge_gradient = torch::zeros({nedges, 3}, torch::kFloat64);
  if (!reached.empty()) {
    auto gradient = torch::autograd::grad(reached, {vectors_t}, gradients, std::nullopt, false, true)[0];
    if (gradient.defined()) edge_gradient += gradient;
  }

  // forces: the edge vector is x_j - x_i, so dE/dx_i = -g and dE/dx_j = +g
  const double *g = edge_gradient.data_ptr<double>();
  for (int64_t e = 0; e < nedges; e++) {
    const int i = static_cast<int>(src[e]), j = static_cast<int>(dst[e]);
    const double gx = g[3 * e], gy = g[3 * e + 1], gz = g[3 * e + 2];
    f[i][0] += gx;
    f[i][1] += gy;
    f[i][2] += gz;
    f[j][0] -= gx;
    f[j][1] -= gy;
    f[j][2] -= gz;
    if (vflag_either)
      ev_tally_xyz(i, j, nlocal, 1, 0.0, 0.0, gx, gy, gz, -vectors[3 * e], -vectors[3 * e + 1],
                   -vectors[3 * e + 2]);
  }
  if (eflag_global) eng_vdwl += energy.item<double>();
  if (eflag_atom) {
    auto e_atom = energies.accessor<double, 1>();
    for (int i = 0; i < nlocal; i++) eatom[i] += e_atom[i];
  }
}

int PairMLFFD::pack_forward_comm(int n, int *list, double *buf, int, int *)
{
  int m = 0;
  for (int i = 0; i < n; i++) {
    const double *row = comm_data + static_cast<size_t>(list[i]) * width;
    for (int c = 0; c < width; c++) buf[m++] = row[c];
  }
  return m;
}

void PairMLFFD::unpack_forward_comm(int n, int first, double *buf)
{
  std::memcpy(comm_data + static_cast<size_t>(first) * width, buf, sizeof(double) * n * width);
}

int PairMLFFD::pack_reverse_comm(int n, int first, double *buf)
{
  std::memcpy(buf, comm_data + static_cast<size_t>(first) * width, sizeof(double) * n * width);
  return n * width;
}

void PairMLFFD::unpack_reverse_comm(int n, int *list, double *buf)
{
  int m = 0;
  for (int i = 0; i < n; i++) {
    double *row = comm_data + static_cast<size_t>(list[i]) * width;
    for (int c = 0; c < width; c++) row[c] += buf[m++];
  }
}

}    // namespace LAMMPS_NS

// ---- plugin registration (the ABI of LAMMPS's lammpsplugin.h, which the wheel does not ship) ----

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);

static LAMMPS_NS::Pair *create_pair_mlffd(LAMMPS_NS::LAMMPS *lmp)
{
  return new LAMMPS_NS::PairMLFFD(lmp);
}

void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  plugin.version = MLFFD_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "mlffd";
  plugin.info = "mlff-distiller student force fields (pair_style mlffd MODEL.pt)";
  plugin.author = "mlff-distiller";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &create_pair_mlffd;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
}
}
