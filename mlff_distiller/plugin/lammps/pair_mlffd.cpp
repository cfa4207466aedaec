// pair_style mlffd: runs an mlff-distiller student exported with `mlffd export --engine lammps`.
//
//   units metal                    (or units real: energies, forces and the virial are then
//                                   converted from eV to kcal/mol with LAMMPS's own factor)
//   newton on                      (the default)
//   pair_style mlffd water.pt
//   pair_coeff * * O H             (element of each atom type, in type order; NULL for a type the
//                                   student does not see, e.g. under pair_style hybrid/overlay)
//
// Atoms of NULL types are neither receivers nor neighbours: they carry no energy, feel no force
// from the student and do not change what it computes for the others. Under pair_style hybrid
// the neighbour list is a skip list without them; they are left out of the edges all the same.
// Any C++ exception from torch or the network becomes a LAMMPS ERROR line; so do two atoms closer
// than 0.1 Å and non-finite positions. Atom types whose masses are not those of their elements
// (a pair_coeff list in another order than the types) draw a WARNING. A rank that owns no atoms
// (a molecule in a large box, a vacuum gap, an empty box) runs the network on zero atoms and takes
// part in every exchange.
//
// The student is a message-passing network of L layers: an atom's energy depends on atoms
// up to L x cutoff away. The pair style runs one layer at a time on the local atoms and
// forward-communicates the new per-atom features to the ghost atoms before the next layer,
// so ghost atoms are needed only one cutoff (+ skin) deep. The network is the fused one of
// mlff_distiller/models/kernel/painn.h (loops over atoms and edges, no autograd), run by the
// driver.h loop the torch operators also run, with the weights read by name from the model file
// and checked (weights.h); the edges' geometry is computed once per step and shared by the
// layers. The reverse pass walks the layers backwards and reverse-communicates the gradients
// that land on ghost features; the gradients on the edge vectors x_j - x_i give the forces and
// the virial (global and per atom). See mlff_distiller/export/lammps.py for the model file.
//
// Built as a LAMMPS plugin by `mlffd lammps build`; loaded through the `lammps.plugins` entry
// point of the mlff-distiller Python package.

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "exceptions.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "pair.h"
#include "update.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/script.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <memory>
#include <new>
#include <vector>

#include "lammps_plugin.h"
#include "pair_mlffd.h"
#include "pair_mlffd_checks.h"
#include "weights.h"

namespace LAMMPS_NS {

// Runs body; an exception from torch or the network (any but LAMMPS's own, which already
// printed its ERROR line) becomes a LAMMPS error: error->all where every rank does the same
// (loading the model in settings), error->one where one rank may fail alone (compute, where a
// torch check failing is a bug of the network: the input was checked before). coeff and
// init_style run no torch code and report their own errors.
template <typename Body>
void PairMLFFD::as_lammps_error(const char *where, bool collective, Body &&body)
{
  std::string message;
  try {
    body();
    return;
  } catch (LAMMPSException &) {
    throw;
  } catch (const std::bad_alloc &) {
    message = "out of memory";
  } catch (const c10::Error &exc) {
    message = exc.what_without_backtrace();
    if (!collective) message = "internal error (please report it with this input): " + message;
  } catch (const std::exception &exc) {
    message = exc.what();
  } catch (...) {
    message = "unknown C++ exception";
  }
  if (collective) error->all(FLERR, "pair_style mlffd ({}): {}", where, message);
  error->one(FLERR, "pair_style mlffd ({}): {}", where, message);
}

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
  // The model takes Å and returns eV. Both 'metal' and 'real' measure lengths in Å; in 'real'
  // energies are kcal/mol, and LAMMPS's own factor force->qe2f (eV -> kcal/mol, 23.060549; 1 in
  // metal) converts the energy, and with it the forces and the virial, so that they agree with
  // the kinetic energies LAMMPS computes in the same units.
  if (strcmp(update->unit_style, "metal") == 0)
    energy_scale = 1.0;
  else if (strcmp(update->unit_style, "real") == 0)
    energy_scale = force->qe2f;
  else
    error->all(FLERR,
               "pair_style mlffd requires 'units metal' (Å, eV, ps) or 'units real' (Å, kcal/mol, fs); "
               "this input uses 'units {}'",
               update->unit_style);
  as_lammps_error("loading the model", true, [&] { load_model(arg[0]); });
}

void PairMLFFD::load_model(const std::string &path)
{
  {
    std::ifstream probe(path);
    if (!probe.good()) error->all(FLERR, "pair_style mlffd: cannot open model file {}", path);
  }
  torch::jit::ExtraFilesMap extra{{"mlffd_metadata.json", ""}};
  torch::jit::Module model;
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
  if (!model.hasattr("kernel_weights"))
    error->all(FLERR,
               "pair_style mlffd: {} was written by an older mlff-distiller; export it again with "
               "'mlffd export CHECKPOINT --engine lammps -o MODEL.pt'",
               path);
  cutoff = model.attr("cutoff").toDouble();
  layers = static_cast<int>(model.attr("layers").toInt());
  width = static_cast<int>(model.attr("width").toInt());
  const double norm_epsilon = model.attr("norm_epsilon").toDouble();
  symbols.clear();
  for (const auto &name : model.attr("symbols").toList()) symbols.push_back(name.get().toStringRef());
  // the weights by name (models/kernel/weights.h checks every name, shape and dtype), in the
  // dtype of the embedding: float32 or float64 exports
  const c10::IValue named = model.attr("kernel_weights");
  if (!named.isGenericDict())
    error->all(FLERR,
               "pair_style mlffd: {} holds its weights as a list, as older mlff-distiller versions wrote them; "
               "export it again with 'mlffd export CHECKPOINT --engine lammps -o MODEL.pt'",
               path);
  const mlffd::NamedTensors weights = c10::impl::toTypedDict<std::string, at::Tensor>(named.toGenericDict());
  const auto embedding = weights.find("embedding.weight");
  const bool single_precision = embedding != weights.end() && embedding->value().scalar_type() == at::kFloat;
  single.reset();
  double_precision.reset();
  int64_t embedded = 0, network_width = 0;
  try {
    const mlffd::Weights checked = mlffd::read_weights(weights, layers, single_precision ? at::kFloat : at::kDouble);
    embedded = checked.species;
    if (single_precision) {
      single = std::make_unique<Evaluation<float>>(checked, cutoff, norm_epsilon);
      network_width = single->driver.network().width();
    } else {
      double_precision = std::make_unique<Evaluation<double>>(checked, cutoff, norm_epsilon);
      network_width = double_precision->driver.network().width();
    }
  } catch (const c10::Error &exc) {
    error->all(FLERR, "pair_style mlffd: {} holds no usable network: {}", path, exc.what_without_backtrace());
  }
  if (network_width != width)
    error->all(FLERR, "pair_style mlffd: {} says its feature rows are {} wide but its network's are {}", path, width,
               network_width);
  if (embedded != static_cast<int64_t>(symbols.size()))
    error->all(FLERR, "pair_style mlffd: {} lists {} elements but its network embeds {}", path, symbols.size(),
               embedded);
  model_path = path;
  comm_forward = width;
  comm_reverse = width;

  if (!std::getenv("OMP_NUM_THREADS")) at::set_num_threads(1);
  if (comm->me == 0)
    utils::logmesg(lmp,
                   "pair_style mlffd: {} ({} layers, cutoff {} Å, receptive field {} Å, "
                   "{} precision, {} BLAS thread(s) per MPI rank; energies x {} for units {})\n",
                   path, layers, cutoff, layers * cutoff, single ? "single" : "double", at::get_num_threads(),
                   energy_scale, update->unit_style);
}

void PairMLFFD::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  int ntypes = atom->ntypes;
  if (narg != 2 + ntypes || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR,
               "Incorrect args for pair_coeff: expected 'pair_coeff * * ELEMENT...' with one element "
               "symbol or NULL per atom type ({} types)",
               ntypes);
  std::string supported;
  for (const auto &name : symbols) supported += (supported.empty() ? "" : " ") + name;
  type_species.assign(ntypes + 1, -1);
  for (int itype = 1; itype <= ntypes; itype++) {
    const std::string element(arg[1 + itype]);
    if (element == "NULL") continue;
    for (size_t s = 0; s < symbols.size(); s++)
      if (symbols[s] == element) type_species[itype] = static_cast<int64_t>(s);
    if (type_species[itype] < 0)
      error->all(FLERR, "pair_coeff: element {} (atom type {}) is not supported by model {}; it supports {} (or NULL)",
                 element, itype, model_path, supported);
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = type_species[i] >= 0 && type_species[j] >= 0;
  warned_masses.clear();
  check_masses();
}

// Warns (once per finding) when atom types' masses are not those of the elements they are mapped
// to: mostly a pair_coeff list in another order than the types (a swapped pair_coeff * * H O
// changed a water box's energy by 1,800 eV, silently). Masses not all set yet (a mass command
// after pair_coeff) are checked in init_style, which also sees masses changed since.
void PairMLFFD::check_masses()
{
  const int ntypes = atom->ntypes;
  if (!atom->mass || type_species.size() != static_cast<size_t>(ntypes + 1)) return;
  for (int type = 1; type <= ntypes; type++)
    if (type_species[type] >= 0 && !atom->mass_setflag[type]) return;
  const std::string found = mlffd::mass_mismatches(atom->mass, ntypes, type_species, symbols);
  if (found == warned_masses) return;
  warned_masses = found;
  if (!found.empty() && comm->me == 0)
    error->warning(FLERR,
                   "pair_style mlffd: atom masses do not match the elements pair_coeff maps their types to: {}. "
                   "pair_coeff * * lists one element per atom type, in type order; ignore this only if the "
                   "masses differ on purpose (isotopes)",
                   found);
}

void PairMLFFD::init_style()
{
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style mlffd requires 'newton on' (newton_pair on): forces on ghost atoms "
                      "must be summed onto their owners");
  check_masses();
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

double PairMLFFD::init_one(int, int)
{
  return cutoff;
}

void PairMLFFD::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  as_lammps_error("evaluating the network", false, [&] {
    if (single) evaluate(*single);
    else evaluate(*double_precision);
  });
}

template <typename T>
void PairMLFFD::evaluate(Evaluation<T> &evaluation)
{
  double **x = atom->x;
  double **f = atom->f;
  int *type = atom->type;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const double cutoff_squared = cutoff * cutoff;

  // atoms of NULL types run through the network as species 0 with no edges: the gradient of
  // their energies stays in their own rows (no edge carries it to an atom or a force), and their
  // energies are not tallied
  species.resize(nall);
  seen.resize(nall);
  for (int i = 0; i < nall; i++) {
    seen[i] = type_species[type[i]] >= 0;
    species[i] = seen[i] ? type_species[type[i]] : 0;
  }
  // edges closer than the cutoff: each pair of local atoms once (i < j), then the reverses of
  // those, then the edges to ghost atoms; the network computes each local pair's radial
  // features and filters once
  src.clear();
  dst.clear();
  ghost_src.clear();
  ghost_dst.clear();
  std::vector<T> &vectors = evaluation.vectors;
  std::vector<T> &ghost_vectors = evaluation.ghost_vectors;
  vectors.clear();
  ghost_vectors.clear();
  // (two atoms closer than MIN_DISTANCE, or a position not finite, stop the run with an ERROR
  // naming the atoms: the network would give NaN or meaningless forces)
  const double closest_squared = mlffd::MIN_DISTANCE * mlffd::MIN_DISTANCE;
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = list->ilist[ii];
    if (!seen[i]) continue;
    if (!std::isfinite(x[i][0]) || !std::isfinite(x[i][1]) || !std::isfinite(x[i][2]))
      error->one(FLERR, "pair_style mlffd: atom {} has a non-finite position ({}, {}, {}) at step {}", atom->tag[i],
                 x[i][0], x[i][1], x[i][2], update->ntimestep);
    const int *jlist = list->firstneigh[i];
    for (int jj = 0; jj < list->numneigh[i]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      if (!seen[j]) continue;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      const double r2 = dx * dx + dy * dy + dz * dz;
      if (r2 < closest_squared)
        error->one(FLERR,
                   "pair_style mlffd: atoms {} and {} are {:.3g} Å apart at step {}, closer than {} Å: an atom "
                   "placed twice or atoms created over others?",
                   atom->tag[i], atom->tag[j], std::sqrt(r2), update->ntimestep, mlffd::MIN_DISTANCE);
      if (r2 >= cutoff_squared || (j < nlocal && j < i)) continue;
      const bool ghost = j >= nlocal;
      (ghost ? ghost_src : src).push_back(i);
      (ghost ? ghost_dst : dst).push_back(j);
      auto &to = ghost ? ghost_vectors : vectors;
      to.push_back(static_cast<T>(dx));
      to.push_back(static_cast<T>(dy));
      to.push_back(static_cast<T>(dz));
    }
  }
  const int64_t pairs = static_cast<int64_t>(src.size());
  for (int64_t k = 0; k < pairs; k++) {
    src.push_back(dst[k]);
    dst.push_back(src[k]);
    for (int c = 0; c < 3; c++) vectors.push_back(-vectors[3 * k + c]);
  }
  src.insert(src.end(), ghost_src.begin(), ghost_src.end());
  dst.insert(dst.end(), ghost_dst.begin(), ghost_dst.end());
  vectors.insert(vectors.end(), ghost_vectors.begin(), ghost_vectors.end());
  const int64_t nedges = static_cast<int64_t>(src.size());

  // the network over local and ghost atoms (models/kernel/driver.h): between layers, owners'
  // new feature rows are copied onto their ghosts, and on the way back the gradients on ghost
  // rows are summed onto their owners
  struct Ghosts {
    PairMLFFD *pair;
    void features(T *rows) { pair->communicate_forward(rows); }
    void gradients(T *rows) { pair->communicate_reverse(rows); }
  } ghosts{this};
  evaluation.driver.run(nall, nlocal, species.data(), nedges, src.data(), dst.data(), vectors.data(), pairs, ghosts);
  const std::vector<T> &energies = evaluation.driver.energies();

  // forces: the edge vector is x_j - x_i, so dE/dx_i = -g and dE/dx_j = +g
  const T *g = evaluation.driver.edge_gradients().data();
  for (int64_t e = 0; e < nedges; e++) {
    const int i = static_cast<int>(src[e]), j = static_cast<int>(dst[e]);
    const double gx = energy_scale * g[3 * e], gy = energy_scale * g[3 * e + 1], gz = energy_scale * g[3 * e + 2];
    f[i][0] += gx;
    f[i][1] += gy;
    f[i][2] += gz;
    f[j][0] -= gx;
    f[j][1] -= gy;
    f[j][2] -= gz;
    if (vflag_either)
      ev_tally_xyz(i, j, nlocal, 1, 0.0, 0.0, gx, gy, gz, x[i][0] - x[j][0], x[i][1] - x[j][1], x[i][2] - x[j][2]);
  }
  if (eflag_global)
    for (int i = 0; i < nlocal; i++)
      if (seen[i]) eng_vdwl += energy_scale * energies[i];
  if (eflag_atom)
    for (int i = 0; i < nlocal; i++)
      if (seen[i]) eatom[i] += energy_scale * energies[i];
}

template <typename T>
void PairMLFFD::communicate_forward(T *rows)
{
  comm_single = reinterpret_cast<float *>(rows);
  comm_double = reinterpret_cast<double *>(rows);
  comm->forward_comm(this);
}

template <typename T>
void PairMLFFD::communicate_reverse(T *rows)
{
  comm_single = reinterpret_cast<float *>(rows);
  comm_double = reinterpret_cast<double *>(rows);
  comm->reverse_comm(this);
}

}    // namespace LAMMPS_NS

// ---- plugin registration (lammps_plugin.h) ----

extern "C" {
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
