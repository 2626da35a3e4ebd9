#ifndef CONVNET_CMPI_SHIM_H
#define CONVNET_CMPI_SHIM_H
#include <mpi.h>

// Open MPI defines its handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) as casts of global
// addresses, and MPI_IN_PLACE as a cast integer: macros Swift cannot import. These return them.
static inline MPI_Comm cn_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm cn_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype cn_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cn_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype cn_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op cn_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op cn_mpi_max(void) { return MPI_MAX; }
static inline void *cn_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Info cn_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline int cn_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int cn_mpi_undefined(void) { return MPI_UNDEFINED; }
static inline int cn_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline MPI_Status *cn_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }

#endif
