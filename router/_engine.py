"""Everything a client works out once from its policy: catalog entries, deployments, the planner.

Built at client construction and never changed afterwards, so the per-request path only reads.
Environment variables (API keys) are read here, once, like the openai client reads
``OPENAI_API_KEY`` when it is constructed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from policies.plan import Planner
from providers.base import Deployment, split_credentials
from providers.catalog import ModelInfo, resolve_model
from providers.registry import provider_spec
from router._balancing import Balance, Member, Pool, WhenAllLimited
from router._resilience import Resilience, resilience_for
from router._tiers import add_flex_deployments, priced_at

if TYPE_CHECKING:
    from policies.schema import ModelSpec, Policy


class Engine:
    """The client-independent state of a router: pure data plus the planner."""

    def __init__(
        self,
        policy: Policy,
        *,
        env: Mapping[str, str],
        api_key: str | None = None,
        base_url: str | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        from policies.loader import PolicyError, check_values  # not at `import router`: only for clients

        problems = check_values(policy)  # a file was checked on loading; a Policy built in code was not
        if problems:
            raise PolicyError(problems)
        self.policy = policy
        # Names the policy in every route.decided event: a log line ties to the file that decided it.
        self.policy_hash = hashlib.sha256(policy.model_dump_json().encode()).hexdigest()[:12]
        catalog: dict[str, ModelInfo] = {}
        deployments: dict[str, Deployment] = {}
        unavailable: dict[str, str] = {}
        pools: dict[str, Pool] = {}
        deployment_catalog: dict[str, ModelInfo] = {}
        for name, spec in policy.models.items():
            catalog[name] = resolve_model(
                name, provider=spec.provider, model=spec.model, overrides=spec.catalog_overrides()
            )
            deployment, problem = _deployment(
                name, spec, env=env, api_key=api_key, base_url=base_url, default_headers=default_headers
            )
            if spec.deployments:
                pool, priced = _pool(
                    name,
                    spec,
                    env=env,
                    api_key=api_key,
                    base_url=base_url,
                    default_headers=default_headers,
                    responses="responses" in catalog[name].supports,
                )
                pools[name] = pool
                for key, prices in priced.items():
                    deployment_catalog[key] = dataclasses.replace(catalog[name], **prices)  # type: ignore[arg-type]
                if pool.members:
                    deployment, problem = pool.members[0].deployment, None
                else:
                    problem = "no deployment can be called: " + "; ".join(
                        f"{n}: {why}" for n, why in (pool.unavailable or {}).items()
                    )
            if "responses" in catalog[name].supports:
                # Only the fast path speaks /responses (OpenAI-compatible servers; Azure's v1 API for a
                # pooled model's deployments), not litellm: elsewhere the capability would promise what
                # no adapter does. A pooled model keeps it when every deployment speaks it (``_pool``).
                members = pools[name].members if spec.deployments else ()
                native = (
                    all(m.deployment.responses for m in members)
                    if members
                    else deployment.adapter == "openai" and not spec.deployments
                )
                if native:
                    deployment = dataclasses.replace(deployment, responses=True)
                else:
                    catalog[name] = dataclasses.replace(
                        catalog[name], supports=catalog[name].supports - {"responses"}
                    )
            deployments[name] = deployment
            if problem is not None:
                unavailable[name] = problem
        add_flex_deployments(policy, catalog, deployments, unavailable)  # docs/flex.md
        self.catalog: Mapping[str, ModelInfo] = MappingProxyType(catalog)
        self.deployments: Mapping[str, Deployment] = MappingProxyType(deployments)
        self.unavailable: Mapping[str, str] = MappingProxyType(unavailable)
        # Models with several deployments (policy deployments:), and the prices of those that override
        # the model's, by deployment key (docs/deployments.md).
        self.pools: Mapping[str, Pool] = MappingProxyType(pools)
        self._deployment_catalog: Mapping[str, ModelInfo] = MappingProxyType(deployment_catalog)
        self.planner = Planner(policy, self.catalog, self.unavailable)
        # Models served through litellm: a client starts importing it (in the background) on the
        # first request whose plan includes one, so processes that never route there never pay.
        self.litellm_models = frozenset(
            name for name, d in deployments.items() if d.adapter == "litellm" and name not in unavailable
        )
        # Retry/deadline/breaker settings per route, merged once (None: a model named directly).
        self._resilience = {None: resilience_for(policy, None)} | {
            route: resilience_for(policy, route) for route in policy.routes
        }

    def priced(self, deployment: str, reported_tier: str | None) -> ModelInfo:
        """The prices of an answer from ``deployment`` served at ``reported_tier`` (router._tiers)."""
        return priced_at(self.catalog, deployment, reported_tier)

    def resilience_for(self, route: str | None) -> Resilience:
        return self._resilience.get(route) or self._resilience[None]

    def info_for(self, deployment: Deployment) -> ModelInfo:
        """The catalog entry that prices a call to ``deployment`` (its own price when it overrides)."""
        return self._deployment_catalog.get(deployment.key) or self.catalog[deployment.name]

    def balance_for(self, route: str | None, model: str) -> tuple[Balance, WhenAllLimited]:
        """The route's balance and when_all_limited, else the model's, else weighted / fallback."""
        spec = self.policy.routes.get(route) if route is not None else None
        pool = self.pools[model]
        balance = (spec.balance if spec is not None else None) or pool.balance
        when = (spec.when_all_limited if spec is not None else None) or pool.when_all_limited
        return balance, when

    def deployment_of(self, model: str, pool_name: str | None = None) -> Deployment | None:
        """The deployment of ``model`` named ``pool_name`` (a pooled model's member, as
        ``routing.deployment`` names it); without a name, the model's own (a pooled model's first).
        None when the policy has no such model or deployment."""
        pool = self.pools.get(model)
        if pool is None or pool_name is None:
            return self.deployments.get(model)
        for member in pool.members:
            if member.deployment.pool_name == pool_name:
                return member.deployment
        return None

    def sharing(self, deployment: Deployment) -> frozenset[str]:
        """The keys of the deployments that see what ``deployment``'s server keeps for its account
        (stored responses): the same API base and key."""
        base, key = (deployment.api_base or "").rstrip("/"), deployment.api_key
        every = [*self.deployments.values(), *(m.deployment for p in self.pools.values() for m in p.members)]
        return frozenset(d.key for d in every if (d.api_base or "").rstrip("/") == base and d.api_key == key)

    @property
    def breaker_keys(self) -> tuple[str, ...]:
        """Every name a breaker may be kept under: the models, and each deployment of a pooled one."""
        keys = list(self.deployments)  # the policy's models and their flex variants (providers.tiers)
        for pool in self.pools.values():
            keys += [member.key for member in pool.members]
        return tuple(keys)


def _pool(
    name: str,
    spec: ModelSpec,
    *,
    env: Mapping[str, str],
    api_key: str | None,
    base_url: str | None,
    default_headers: Mapping[str, str] | None,
    responses: bool = False,
) -> tuple[Pool, dict[str, dict[str, float]]]:
    """A model's deployments as a Pool (those that cannot be called left out, with why), and the
    price overrides by deployment key. ``responses``: the model has the capability, so deployments
    on the fast path (OpenAI-compatible, Azure) take a routed ``responses.create`` natively."""
    members: list[Member] = []
    unavailable: dict[str, str] = {}
    priced: dict[str, dict[str, float]] = {}
    from policies.schema import deployment_names  # loaded with the policy, not at `import router`

    for entry, pool_name in zip(spec.deployments or (), deployment_names(spec), strict=True):
        connection = {
            key: getattr(entry, key)
            for key in ("provider", "model", "api_base", "api_key_env", "api_version", "headers")
            if getattr(entry, key) is not None
        }
        merged = spec.model_copy(update=connection)
        deployment, problem = _deployment(
            name, merged, env=env, api_key=api_key, base_url=base_url, default_headers=default_headers
        )
        deployment = dataclasses.replace(
            deployment,
            pool_name=pool_name,
            region=entry.region,
            rate_limits=entry.tpm is not None or entry.rpm is not None,
            responses=responses and deployment.adapter in ("openai", "azure"),
        )
        if problem is not None:
            # The advice names the deployment, not the model: the model's other deployments still serve.
            unavailable[pool_name] = problem.replace("remove the model", "remove the deployment")
            continue
        members.append(Member(deployment, entry.weight, entry.tpm, entry.rpm))
        prices = {
            key: float(value)
            for key in ("input_cost_per_mtok", "cached_input_cost_per_mtok", "output_cost_per_mtok")
            if (value := getattr(entry, key)) is not None
        }
        if prices:
            priced[deployment.key] = prices
    if responses and not all(m.deployment.responses for m in members):
        # One deployment without the Responses API: the model has no such capability, and a routed
        # responses.create is translated to chat on every deployment alike.
        members = [
            Member(dataclasses.replace(m.deployment, responses=False), m.weight, m.tpm, m.rpm)
            for m in members
        ]
    pool = Pool(
        name,
        tuple(members),
        balance=spec.balance or "weighted",
        when_all_limited=spec.when_all_limited or "fallback",
        unavailable=MappingProxyType(unavailable),
    )
    return pool, priced


def _deployment(
    name: str,
    spec: ModelSpec,
    *,
    env: Mapping[str, str],
    api_key: str | None,
    base_url: str | None,
    default_headers: Mapping[str, str] | None,
) -> tuple[Deployment, str | None]:
    """A model's deployment, and why it cannot be called (None when it can)."""
    row = provider_spec(spec.provider)
    model_id = spec.model or name
    is_openai = spec.provider == "openai"
    from_env = env.get(row.api_base_env) if row.api_base_env else None
    api_base = spec.api_base or (base_url if is_openai else None) or from_env or row.api_base
    key_env = spec.api_key_env or row.api_key_env
    key = env.get(key_env) if key_env else None
    if is_openai and api_key and not spec.api_key_env:
        key = api_key
    headers = dict(spec.headers or {})
    if is_openai and default_headers:
        headers = {**default_headers, **headers}
    if api_base:
        api_base, basic = split_credentials(api_base)
        if basic is not None and not any(name.lower() == "authorization" for name in headers):
            headers["authorization"] = basic
    problem: str | None = None
    if key_env and not key:
        problem = f"no API key: set {key_env} or remove the model (or name another variable in api_key_env:)"
    litellm_model = None
    if row.adapter == "litellm":
        litellm_model = f"{row.litellm_prefix}/{model_id}" if row.litellm_prefix else model_id
        if (
            api_base
            and row.litellm_base_suffix
            and not api_base.rstrip("/").endswith(row.litellm_base_suffix)
        ):
            api_base = api_base.rstrip("/") + row.litellm_base_suffix
    elif not api_base:
        problem = f"no api_base: provider {spec.provider} needs api_base: in the policy"
    deployment = Deployment(
        name=name,
        provider=spec.provider,
        model=model_id,
        adapter=row.adapter,
        api_base=api_base,
        api_key=key,
        api_key_env=key_env,
        api_version=spec.api_version,
        headers=MappingProxyType(headers),
        litellm_model=litellm_model,
        stream_ends_with_usage=row.stream_ends_with_usage,
        stream_ignores_timeout=row.stream_ignores_timeout,
    )
    return deployment, problem
