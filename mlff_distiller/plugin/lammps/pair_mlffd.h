// pair_style mlffd: the class LAMMPS instantiates (see pair_mlffd.cpp for what it does).

#pragma once

#include "pair.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "driver.h"
#include "lammps_plugin.h"

namespace LAMMPS_NS {

// The network's driver and everything one evaluation needs, kept from step to step (no
// allocation once the system size has settled), in the dtype the model computes in.
template <typename T>
struct Evaluation {
  Evaluation(mlffd::Weights weights, double cutoff, double norm_epsilon)
      : driver(std::move(weights), cutoff, norm_epsilon) {}
  mlffd::Driver<T> driver;
  std::vector<T> vectors, ghost_vectors;   // edge vectors (Å) to local and to ghost neighbours
};

class PairMLFFD : public Pair {
 public:
  explicit PairMLFFD(LAMMPS *lmp);
  ~PairMLFFD() override;
  void compute(int eflag, int vflag) override;
  void settings(int narg, char **arg) override;
  void coeff(int narg, char **arg) override;
  void init_style() override;
  double init_one(int i, int j) override;
  // the rows being communicated (comm_single or comm_double, width wide) to and from LAMMPS's
  // buffers: owners' features to their ghosts, ghosts' gradients summed onto their owners
  int pack_forward_comm(int n, int *list, double *buf, int, int *) override
  {
    return single ? pack_rows(comm_single, width, n, list, buf) : pack_rows(comm_double, width, n, list, buf);
  }
  void unpack_forward_comm(int n, int first, double *buf) override
  {
    if (single) unpack_rows(comm_single, width, n, first, buf);
    else unpack_rows(comm_double, width, n, first, buf);
  }
  int pack_reverse_comm(int n, int first, double *buf) override
  {
    return single ? pack_range(comm_single, width, n, first, buf) : pack_range(comm_double, width, n, first, buf);
  }
  void unpack_reverse_comm(int n, int *list, double *buf) override
  {
    if (single) add_rows(comm_single, width, n, list, buf);
    else add_rows(comm_double, width, n, list, buf);
  }

 private:
  void allocate();
  void load_model(const std::string &path);
  void check_masses();
  template <typename T> void evaluate(Evaluation<T> &evaluation);
  template <typename T> void communicate_forward(T *rows);
  template <typename T> void communicate_reverse(T *rows);
  template <typename Body> void as_lammps_error(const char *where, bool collective, Body &&body);

  std::string model_path;
  double energy_scale = 1.0;              // model energy unit (eV) -> the input's energy unit
  double cutoff = 0.0;
  int layers = 0;
  int width = 0;                          // values per atom in each feature exchange
  std::vector<std::string> symbols;       // elements of the model, by species index
  std::vector<int64_t> type_species;      // LAMMPS type (1-based) -> species index, -1 for NULL
  std::string warned_masses;              // the mass mismatches last warned of (warn once)
  std::unique_ptr<Evaluation<float>> single;    // one of the two, by the model's precision
  std::unique_ptr<Evaluation<double>> double_precision;
  float *comm_single = nullptr;           // rows (atom-major, `width` wide) being communicated
  double *comm_double = nullptr;

  // reused between steps to keep allocation out of compute()
  std::vector<int64_t> species, src, dst, ghost_src, ghost_dst;
  std::vector<char> seen;                 // per local + ghost atom: not of a NULL type
};

}    // namespace LAMMPS_NS
