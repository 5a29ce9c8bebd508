"""The services of a deployment, as they register themselves: each installed service names a
`ServiceDescriptor` in the `fengqiao.services` entry-point group, so the platform (CLI, dev stack,
migrations, demo seed) works with whatever is installed and never imports a service by name.

    [project.entry-points."fengqiao.services"]
    intake = "intake.app:SERVICE"
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fengqiao.directory import DirectoryWriter
    from fengqiao.settings import Settings

ENTRY_POINT_GROUP = "fengqiao.services"

# Writes a demo deployment through the directory owner's writer; returns the accounts it created.
DemoSeed = Callable[["DirectoryWriter", date], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class ServiceDescriptor:
    """What the platform needs to know of a service to migrate, seed, serve and supervise it."""

    name: str
    # The HTTP port unless `<NAME>_PORT` says otherwise (DESIGN 4.2).
    default_port: int
    migrations_dir: Path
    create_app: Callable[[Settings], FastAPI]
    # One line for the dev banner, and lines of hints under it (`{url}` is the service's address).
    label: str = ""
    dev_hints: tuple[str, ...] = ()
    # The service whose schema holds the directory (stations, staff, tokens): `fengqiao token create`
    # and the demo seed write there. Exactly one registered service owns it.
    owns_directory: bool = False
    demo_seed: DemoSeed | None = None

    def port(self, settings: Settings) -> int:
        return settings.service_port(self.name, self.default_port)


class RegistryError(RuntimeError):
    pass


@cache
def registered_services() -> tuple[ServiceDescriptor, ...]:
    """Every installed service, in port order (the order DESIGN 4.2 lists them)."""
    found: list[ServiceDescriptor] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        descriptor = ep.load()
        if not isinstance(descriptor, ServiceDescriptor) or descriptor.name != ep.name:
            raise RegistryError(f"entry point {ep.name!r} = {ep.value} is not the ServiceDescriptor of {ep.name!r}")
        found.append(descriptor)
    return tuple(sorted(found, key=lambda d: (d.default_port, d.name)))


def service_names() -> tuple[str, ...]:
    return tuple(d.name for d in registered_services())


def service(name: str) -> ServiceDescriptor:
    for descriptor in registered_services():
        if descriptor.name == name:
            return descriptor
    raise RegistryError(f"no service {name!r} is installed (installed: {', '.join(service_names()) or 'none'})")


def directory_owner() -> ServiceDescriptor:
    owners = [d for d in registered_services() if d.owns_directory]
    if len(owners) != 1:
        raise RegistryError(f"exactly one installed service must own the directory, found {len(owners)}")
    return owners[0]
