"""Data-parallel training steps on the CPU: helper processes that compute the gradient of their share of a batch.

Each step, the training process splits its batch into shares of about equal atom counts, hands one
share to each helper and computes the first itself; every process evaluates
:func:`~mlff_distiller.distillation.training.batch_loss` of its share (normalised by the whole
batch's frame and atom counts, so the shares add up to the batch's loss) and its gradient with one
torch thread; the training process sums the gradients and takes the optimiser step. The weights
travel to the helpers, and their gradients back, through shared memory; the frames (a
:class:`~mlff_distiller.distillation.graphs.GraphPool`) are shared once, when the helpers start.
The helpers are forked on Linux (spawned elsewhere).
Processes rather than threads: on two cores, torch's intra-op threads on these small,
scatter-heavy graphs lost more to synchronisation than they gained (and far more when other jobs
share the cores), while processes meet once per step.
"""

import copy
import multiprocessing
import signal
import sys
from collections.abc import Sequence

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

import numpy as np

from ..errors import MLFFDError
from ..models import Student
from .graphs import GraphPool


class StepWorkers:
    """``count`` helper processes (none: everything stays in this process) for the steps of a training.

    Use as a context manager: the helpers start on entry and are stopped on exit (also on an
    exception or an interrupt).

    Parameters
    ----------
    student : Student
        The model being trained, in the training dtype; the helpers start from a copy and receive its
        weights before every step.
    pool : GraphPool
        The training frames; shares are indices into it.
    settings : TrainingSettings
        Loss weights.
    count : int
        Number of helper processes (none in a daemonic process, which may not have children).
    """

    def __init__(self, student: Student, pool: GraphPool, settings, count: int):
        self.student, self.pool, self.settings, self.count = student, pool, settings, count
        self.connections: list = []
        self.processes: list = []
        self.pending: list = []

    def __enter__(self) -> "StepWorkers":
        if multiprocessing.current_process().daemon:  # a daemonic process may not have children: train alone
            self.count = 0
        if self.count <= 0:
            return self
        # fork: the helpers inherit the model and the frames (nothing to pickle, no re-import of a
        # user's script) and run one torch thread each, as torch's own DataLoader workers do
        context = torch.multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        parameters = list(self.student.parameters())
        self.weights = parameters_to_vector(parameters).detach().clone().share_memory_()
        self.gradients = [torch.zeros_like(self.weights).share_memory_() for _ in range(self.count)]
        try:
            for rank in range(self.count):
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=_serve,
                    args=(
                        theirs,
                        copy.deepcopy(self.student),
                        self.pool,
                        self.settings,
                        self.weights,
                        self.gradients[rank],
                    ),
                    name=f"mlffd-training-helper-{rank + 1}",
                    daemon=True,
                )
                process.start()
                theirs.close()
                self.connections.append(ours)
                self.processes.append(process)
            for connection in self.connections:
                self._receive(connection)  # "ready"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for connection in self.connections:
            try:
                connection.send(None)
            except (OSError, ValueError):
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for connection in self.connections:
            connection.close()
        self.connections, self.processes = [], []

    def start(self, shares: Sequence[np.ndarray], frames_total: int, atoms_total: int) -> None:
        """Hand ``shares`` (frame indices into the pool, one per helper at most) to the helpers with the
        current weights; call :meth:`collect` after computing this process's share."""
        if len(shares) > self.count:
            raise ValueError(f"{len(shares)} shares for {self.count} helpers")
        if shares:
            self.weights.copy_(parameters_to_vector(self.student.parameters()).detach())
        self.pending = list(range(len(shares)))
        for rank, share in zip(self.pending, shares, strict=True):
            self.connections[rank].send((np.asarray(share, dtype=np.int64), frames_total, atoms_total))

    def collect(self, student: Student) -> float:
        """Add the helpers' gradients to ``student``'s and return the sum of their losses."""
        total = 0.0
        for rank in self.pending:
            total += self._receive(self.connections[rank])
            offset = 0
            for parameter in student.parameters():
                n = parameter.numel()
                share = self.gradients[rank][offset : offset + n].view_as(parameter)
                if parameter.grad is None:
                    parameter.grad = share.clone()
                else:
                    parameter.grad.add_(share)
                offset += n
        self.pending = []
        return total

    def _receive(self, connection) -> float:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            raise MLFFDError("a training helper process ended unexpectedly") from None
        if isinstance(message, str):
            raise MLFFDError(f"a training helper process failed: {message}")
        return message


def _serve(connection, student: Student, pool: GraphPool, settings, weights, gradients) -> None:
    """A helper's loop: receive a share, load the weights, write the gradient of its loss, reply with the loss."""
    from .training import add_loss_gradient, batch_loss

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the training process, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the handler a forked helper inherits
    torch.set_num_threads(1)
    parameters = list(student.parameters())
    student.train()
    connection.send(0.0)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            frames, frames_total, atoms_total = message
            with torch.no_grad():
                vector_to_parameters(weights, parameters)
            for parameter in parameters:
                parameter.grad = None
            loss = batch_loss(student, pool.batch(frames), settings, frames_total, atoms_total)
            add_loss_gradient(loss, parameters)
            offset = 0
            for parameter in parameters:
                n = parameter.numel()
                target = gradients[offset : offset + n]
                if parameter.grad is None:
                    target.zero_()
                else:
                    target.copy_(parameter.grad.reshape(-1))
                offset += n
            connection.send(loss.item())
        except Exception as exc:  # reported by the training process, which stops
            connection.send(f"{type(exc).__name__}: {exc}")
            return
