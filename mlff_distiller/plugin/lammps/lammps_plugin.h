// What pair_style mlffd needs from LAMMPS beyond its headers: the layout of the per-atom rows in
// LAMMPS's communication buffers, and the plugin ABI of lammpsplugin.h (which the wheel does not
// ship).

#pragma once

#include <cstddef>

namespace LAMMPS_NS {

// LAMMPS's buffers hold doubles; the rows are float or double, as the model computes

template <typename T>
inline int pack_rows(const T *rows, int width, int n, const int *list, double *buf)
{
  int m = 0;
  for (int i = 0; i < n; i++) {
    const T *row = rows + static_cast<size_t>(list[i]) * width;
    for (int c = 0; c < width; c++) buf[m++] = row[c];
  }
  return m;
}

template <typename T>
inline void unpack_rows(T *rows, int width, int n, int first, const double *buf)
{
  T *row = rows + static_cast<size_t>(first) * width;
  for (int m = 0; m < n * width; m++) row[m] = static_cast<T>(buf[m]);
}

template <typename T>
inline int pack_range(const T *rows, int width, int n, int first, double *buf)
{
  const T *row = rows + static_cast<size_t>(first) * width;
  for (int m = 0; m < n * width; m++) buf[m] = row[m];
  return n * width;
}

template <typename T>
inline void add_rows(T *rows, int width, int n, const int *list, const double *buf)
{
  int m = 0;
  for (int i = 0; i < n; i++) {
    T *row = rows + static_cast<size_t>(list[i]) * width;
    for (int c = 0; c < width; c++) row[c] += static_cast<T>(buf[m++]);
  }
}

}    // namespace LAMMPS_NS

// The plugin ABI of LAMMPS's lammpsplugin.h.
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

}
