"""POST /graphql: the curated gallery and the templates as a graphene 3 schema, and its limits.

The schema: ``gallery(first: Int = 24, after: String)``, a Relay connection of curated entries
(``key caption template {id name} gifUrl mp4Url posterUrl cardUrl shareUrl width height
createdAt``,
served from the process's in-memory gallery), and ``templates``. Cursors are opaque (base64 of
the entry's position); a malformed one is a GraphQL error.

The view is graphql-server's Flask view, with every limit applied *before any resolver runs*
(SECURITY.md, "GraphQL in production"):

- POST only, ``application/json`` only; a body over MAX_BODY_BYTES is refused (413), and so is
  a batch (a JSON array of operations, 400) — one operation per request;
- the document is parsed (at most MAX_TOKENS tokens); each operation's depth ≤ MAX_DEPTH,
  aliases ≤ MAX_ALIASES and fields ≤ MAX_FIELDS are checked by a plain walk of the syntax tree
  (fragments expanded, so a fragment spread twice counts twice), so graphql-core's validation,
  quadratic in places, only ever sees a small document;
- then graphql-core's standard rules plus ``first`` ≤ MAX_PAGE_SIZE (a literal, a variable, or
  a variable's declared default) and, unless LOOPMARK_DEBUG, no introspection and no "did you
  mean" suggestions (they would leak the schema that introspection hides).

A refused document answers ``{"data": null, "errors": [...]}`` (HTTP 200, or 400 to a client
that accepts ``application/graphql-response+json``, as the GraphQL-over-HTTP spec says);
refused bodies answer the site's JSON error ``{"error": {code, message}}``.

No GraphiQL, even in debug: graphql-server's GraphiQL page loads React and GraphiQL from a CDN
with inline scripts, which the site's CSP forbids and which cannot load offline. In debug,
introspection is allowed within the same limits: hand-written ``__schema``/``__type`` queries
work, but a tool's stock introspection query (about 10 levels deep) is refused for its depth.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import graphene
from flask import Flask, Request, Response, request, url_for
from flask.typing import ResponseReturnValue
from graphene import relay
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
    specified_rules,
    validate,
    value_from_ast_untyped,
)
from graphql.language import OperationType
from graphql.validation import (
    ASTValidationRule,
    NoSchemaIntrospectionCustomRule,
    ValidationContext,
    ValidationRule,
)
from graphql_server.exceptions import GraphQLValidationError
from graphql_server.flask.views import GraphQLView
from graphql_server.http import GraphQLHTTPResponse, GraphQLRequestData
from graphql_server.http.exceptions import HTTPException as GraphQLHTTPException
from graphql_server.http.sync_base_view import SyncHTTPRequestAdapter
from graphql_server.runtime import execute_sync
from werkzeug.exceptions import UnsupportedMediaType

from loopmark.errors import BadInput, LoopmarkError
from loopmark.records.gallery import GalleryEntry
from loopmark.renderer.templates import Template
from loopmark.service.catalog import TemplateCatalog
from loopmark.web import i18n, links
from loopmark.web.context import services
from loopmark.web.errors import error_response

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_DEPTH = 8  # nested fields; the gallery's own query is 5 deep
MAX_ALIASES = 20
# Fields in an operation, fragments expanded. graphql-core's overlapping-fields rule is
# quadratic in them (250 repeated fields cost a quarter of a CPU second to validate), so the
# limits run first and the standard rules only on a document within them. The page asks for 14.
MAX_FIELDS = 100
MAX_PAGE_SIZE = 50  # entries per page
DEFAULT_PAGE_SIZE = 24
# The page's query is about 60 tokens; the bound keeps parsing a hostile document to
# milliseconds, before the limits below are even looked at.
MAX_TOKENS = 1000
CURSOR_PREFIX = "gallery:"
MAX_CURSOR_CHARS = 64
UNAVAILABLE_MESSAGE = "The gallery is briefly unavailable; please try again shortly."
INTERNAL_MESSAGE = "Something went wrong on our side."


# -- what resolvers reach --------------------------------------------------------------------


class GalleryPages(Protocol):
    """What the schema needs of the gallery (InMemoryGallery)."""

    def page(self, offset: int, limit: int) -> tuple[tuple[GalleryEntry, ...], bool]: ...


def _share_url(key: str) -> str:
    return url_for("pages.share", key=key)


@dataclass
class GalleryContext:
    """The context of one GraphQL request: the gallery, the templates and how to link media.
    Templates are listed once per request, however many entries name them."""

    gallery: GalleryPages
    catalog: TemplateCatalog
    media_urls: Callable[[str], dict[str, str]] = links.media_urls
    template_urls: Callable[[Template], dict[str, str]] = links.template_urls
    share_url: Callable[[str], str] = _share_url
    # The request's language: templates are named in it (their own name there, else the
    # default language's), as the pages name them.
    language: str | None = None
    _templates: dict[str, Template] | None = field(default=None, init=False, repr=False)

    @classmethod
    def current(cls) -> GalleryContext:
        """The context for a request to the current app (needs an app and request context)."""
        site = services()
        return cls(gallery=site.gallery, catalog=site.templates, language=i18n.current_language())

    def template(self, template_id: str) -> TemplateNode | None:
        """The entry's template if visitors may see it; None for a draft (unpublished since the
        render was curated: its name, poster and preview are not public), a removed one, or
        when the catalog cannot say. The entry itself stays: the admin curated the render, and
        its own media are public whatever became of the template."""
        if self._templates is None:
            try:
                listed = self.catalog.all(enabled_only=False)  # loads; never prepares
            except LoopmarkError as exc:
                log.warning("gallery: template catalog unavailable, no templates: %s", exc.reason)
                listed = []
            self._templates = {template.id: template for template in listed if template.enabled}
        template = self._templates.get(template_id)
        return None if template is None else self.template_node(template)

    def template_node(self, template: Template) -> TemplateNode:
        urls = self.template_urls(template)
        return TemplateNode(
            id=template.id,
            name=template.name_for(self.language),
            poster_url=urls["poster"],
            preview_url=urls["preview"],
        )

    def node(self, entry: GalleryEntry) -> GalleryNode:
        media = self.media_urls(entry.key)
        return GalleryNode(
            key=entry.key,
            caption=entry.caption,
            template=self.template(entry.template_id),
            gif_url=media["gif"],
            mp4_url=media["mp4"],
            poster_url=media["poster"],
            card_url=media["card"],
            share_url=self.share_url(entry.key),
            width=entry.width,
            height=entry.height,
            created_at=datetime.fromtimestamp(entry.added_at, tz=UTC),
        )


@dataclass(frozen=True)
class TemplateNode:
    id: str
    name: str
    poster_url: str | None = None
    preview_url: str | None = None


@dataclass(frozen=True)
class GalleryNode:
    key: str
    caption: str
    template: TemplateNode | None
    gif_url: str
    mp4_url: str
    poster_url: str
    card_url: str
    share_url: str
    width: int
    height: int
    created_at: datetime


# -- cursors ---------------------------------------------------------------------------------


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{position}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The position a cursor names; BadInput for anything this module did not hand out."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (ValueError, binascii.Error):  # UnicodeError is a ValueError
        raise BadInput("the cursor is not one this gallery handed out") from None
    digits = text.removeprefix(CURSOR_PREFIX)
    if not text.startswith(CURSOR_PREFIX) or not digits.isascii() or not digits.isdigit():
        raise BadInput("the cursor is not one this gallery handed out")
    return int(digits)


# -- the schema ------------------------------------------------------------------------------


class TemplateType(graphene.ObjectType):  # type: ignore[misc]  # graphene ships no types
    class Meta:
        name = "Template"
        description = "A video loop visitors caption."

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    poster_url = graphene.String(description="Still of the loop (JPEG); null if removed.")
    preview_url = graphene.String(description="The loop (MP4); null if removed.")


class GalleryEntryType(graphene.ObjectType):  # type: ignore[misc]  # graphene ships no types
    class Meta:
        name = "GalleryEntry"
        description = "A render the admin curated. Media URLs are immutable."

    key = graphene.ID(required=True)
    caption = graphene.String(required=True, description="The caption; the media's alt text.")
    template = graphene.Field(
        TemplateType,
        description="The loop it was made from; null when that loop is not public (a draft, "
        "or removed since).",
    )
    gif_url = graphene.String(required=True)
    mp4_url = graphene.String(required=True, description="The loop as MP4 (lighter than GIF).")
    poster_url = graphene.String(required=True, description="First frame as JPEG.")
    card_url = graphene.String(
        description="The 1200×630 share card (JPEG). Renders made before share cards existed "
        "have none: their URL answers 404."
    )
    share_url = graphene.String(required=True, description="The share page.")
    width = graphene.Int(required=True)
    height = graphene.Int(required=True)
    created_at = graphene.DateTime(required=True, description="When it joined the gallery.")


class GalleryConnection(relay.Connection):  # type: ignore[misc]  # graphene ships no types
    class Meta:
        node = GalleryEntryType
        strict_types = True


def _graphql_error(exc: LoopmarkError) -> GraphQLError:
    if isinstance(exc, BadInput):
        return GraphQLError(exc.reason, extensions={"code": exc.code.upper()})
    log.warning("gallery: %s: %s", exc.code, exc.reason)
    return GraphQLError(UNAVAILABLE_MESSAGE, extensions={"code": "UNAVAILABLE"})


def resolve_gallery(
    _root: object,
    info: graphene.ResolveInfo,
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
) -> GalleryConnection:
    if first is None:  # an explicit null
        first = DEFAULT_PAGE_SIZE
    # PageSizeRule refused these before execution; checked again for callers that skip it.
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise GraphQLError(
            f"first must be between 0 and {MAX_PAGE_SIZE}", extensions={"code": "PAGE_SIZE"}
        )
    context: GalleryContext = info.context
    try:
        offset = 0 if not after else decode_cursor(after) + 1
        entries, more = context.gallery.page(offset, first)
    except LoopmarkError as exc:
        raise _graphql_error(exc) from exc
    edges = [
        GalleryConnection.Edge(node=context.node(entry), cursor=encode_cursor(offset + index))
        for index, entry in enumerate(entries)
    ]
    return GalleryConnection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=more,
            has_previous_page=offset > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


def resolve_templates(_root: object, info: graphene.ResolveInfo) -> list[TemplateNode]:
    context: GalleryContext = info.context
    try:
        return [context.template_node(template) for template in context.catalog.all()]
    except LoopmarkError as exc:
        raise _graphql_error(exc) from exc


class Query(graphene.ObjectType):  # type: ignore[misc]  # graphene ships no types
    gallery = graphene.Field(
        GalleryConnection,
        required=True,
        first=graphene.Int(default_value=DEFAULT_PAGE_SIZE),
        after=graphene.String(),
        resolver=resolve_gallery,
        description=f"Curated entries in the admin's order, at most {MAX_PAGE_SIZE} a page.",
    )
    templates = graphene.List(
        graphene.NonNull(TemplateType),
        required=True,
        resolver=resolve_templates,
        description="The enabled templates.",
    )


@functools.cache
def build_schema() -> graphene.Schema:
    """The site's schema (built once per process)."""
    return graphene.Schema(query=Query)


# -- limits: checked before execution ------------------------------------------


def _fold(
    node: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    combine: Callable[[FieldNode, int], int],
    join: Callable[[list[int]], int],
    memo: dict[str, int],
    cap: int,
) -> int:
    """Fold a selection set with fragments expanded: ``combine(field, inner)`` per field,
    ``join`` over siblings. A fragment's result is memoised (a fragment spread a thousand times
    is walked once) and capped at ``cap`` (only "over the limit" matters); an unknown fragment
    or a fragment cycle counts as nothing here (the standard rules report those)."""
    if node is None:
        return 0
    values: list[int] = []
    for selection in node.selections:
        if isinstance(selection, FieldNode):
            inner = _fold(selection.selection_set, fragments, combine, join, memo, cap)
            values.append(combine(selection, inner))
        elif isinstance(selection, InlineFragmentNode):
            values.append(_fold(selection.selection_set, fragments, combine, join, memo, cap))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in memo:
                memo[name] = 0  # in progress: a cycle back here adds nothing
                fragment = fragments.get(name)
                if fragment is not None:
                    found = _fold(fragment.selection_set, fragments, combine, join, memo, cap)
                    memo[name] = min(found, cap)
            values.append(memo[name])
    return min(join(values), cap)


@dataclass(frozen=True)
class _Limit:
    code: str
    maximum: int
    message: str
    combine: Callable[[FieldNode, int], int]
    join: Callable[[list[int]], int]


_LIMITS = (
    _Limit(
        "DEPTH_LIMIT",
        MAX_DEPTH,
        f"The query nests fields more than {MAX_DEPTH} deep.",
        combine=lambda _field, inner: 1 + inner,
        join=lambda values: max(values, default=0),
    ),
    _Limit(
        "ALIAS_LIMIT",
        MAX_ALIASES,
        f"The query uses more than {MAX_ALIASES} aliases.",
        combine=lambda field_node, inner: inner + (field_node.alias is not None),
        join=sum,
    ),
    _Limit(
        "FIELD_LIMIT",
        MAX_FIELDS,
        f"The query selects more than {MAX_FIELDS} fields.",
        combine=lambda _field, inner: 1 + inner,
        join=sum,
    ),
)


def limit_errors(document: DocumentNode) -> list[GraphQLError]:
    """Each operation's depth, aliases and fields, fragments expanded, against the limits.
    A plain walk of the syntax tree: a few milliseconds for the largest document parse allows,
    where one pass of graphql-core's validation visitor costs tens."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    errors = []
    for limit in _LIMITS:
        memo: dict[str, int] = {}
        for operation in document.definitions:
            if not isinstance(operation, OperationDefinitionNode):
                continue
            found = _fold(
                operation.selection_set,
                fragments,
                limit.combine,
                limit.join,
                memo,
                cap=limit.maximum + 1,
            )
            if found > limit.maximum:
                errors.append(
                    GraphQLError(limit.message, operation, extensions={"code": limit.code})
                )
    return errors


def page_size_rule(variables: Mapping[str, Any]) -> type[ASTValidationRule]:
    """A rule refusing ``gallery(first: N)`` outside 0..MAX_PAGE_SIZE, where N is a literal, a
    variable of this request, or (unset) any default that variable is declared with."""

    class PageSizeRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self._defaults: dict[str, list[Any]] = {}
            for definition in context.document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    for declared in definition.variable_definitions or ():
                        if declared.default_value is not None:
                            self._defaults.setdefault(declared.variable.name.value, []).append(
                                value_from_ast_untyped(declared.default_value)
                            )

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            query_type = self.context.schema.query_type
            if node.name.value != "gallery" or self.context.get_parent_type() is not query_type:
                return
            for argument in node.arguments or ():
                if argument.name.value != "first":
                    continue
                if isinstance(argument.value, VariableNode):
                    name = argument.value.name.value
                    values = [variables[name]] if name in variables else self._defaults.get(name)
                else:
                    values = [value_from_ast_untyped(argument.value)]
                if any(_out_of_page_range(value) for value in values or ()):
                    self.report_error(
                        GraphQLError(
                            f"first must be between 0 and {MAX_PAGE_SIZE}.",
                            argument,
                            extensions={"code": "PAGE_SIZE"},
                        )
                    )

    return PageSizeRule


def _out_of_page_range(value: Any) -> bool:
    # Non-numbers are refused by variable coercion, before any resolver too.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and not 0 <= value <= MAX_PAGE_SIZE


def checked_document(
    schema: GraphQLSchema,
    query: object,
    variables: Mapping[str, Any] | None = None,
    *,
    introspection: bool = False,
) -> DocumentNode:
    """``query`` parsed and validated with every limit; GraphQLValidationError otherwise.
    Nothing is executed."""
    if not isinstance(query, str) or not query.strip():
        raise GraphQLError("Send one GraphQL operation as the string 'query'.")
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        raise GraphQLValidationError([exc]) from exc
    # The size limits first: validation only ever sees a document of bounded size.
    errors = limit_errors(document)
    if errors:
        raise GraphQLValidationError(errors)
    rules: list[type[ASTValidationRule]] = [*specified_rules, page_size_rule(variables or {})]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    errors = validate(schema, document, rules, hide_suggestions=not introspection)
    if errors:
        raise GraphQLValidationError(errors)
    return document


def execute_checked(
    schema: GraphQLSchema,
    query: str,
    *,
    variables: Mapping[str, Any] | None = None,
    context: GalleryContext | None = None,
    introspection: bool = False,
    operation_name: str | None = None,
) -> ExecutionResult:
    """What the view runs: the limits, then execution. A refused document executes nothing
    and comes back as a result with errors and no data."""
    try:
        document = checked_document(schema, query, variables, introspection=introspection)
    except GraphQLValidationError as exc:
        return ExecutionResult(data=None, errors=exc.errors)
    return execute_sync(
        schema=schema,
        query=document,
        variable_values=dict(variables) if variables is not None else None,
        context_value=context,
        operation_name=operation_name,
        allowed_operation_types={OperationType.QUERY},
        validate_document=False,
    )


# -- the HTTP view ---------------------------------------------------------------------------


class GalleryGraphQLView(GraphQLView):
    """graphql-server's Flask view, POST only, with the limits of the module doc."""

    methods: ClassVar[list[str]] = ["POST"]
    init_every_request = False

    def __init__(self, schema: GraphQLSchema, *, introspection: bool = False) -> None:
        super().__init__(schema, graphql_ide=None, allow_queries_via_get=False)
        self.introspection = introspection

    def dispatch_request(self) -> ResponseReturnValue:
        refusal = refuse_body(request)
        if refusal is not None:
            return refusal
        try:
            return self.run(request=request)
        except GraphQLHTTPException as exc:
            return error_response(exc.status_code, "bad_request", exc.reason)

    def get_context(self, request: Request, response: Response) -> GalleryContext:  # type: ignore[override]
        return GalleryContext.current()

    def execute_operation(
        self,
        request_adapter: SyncHTTPRequestAdapter,
        request_data: GraphQLRequestData,
        context: GalleryContext,  # type: ignore[override]
        root_value: object,
        allowed_operation_types: set[OperationType],
    ) -> ExecutionResult:
        document = checked_document(
            self.schema,
            request_data.query,
            request_data.variables,
            introspection=self.introspection,
        )
        return execute_sync(
            schema=self.schema,
            query=document,
            root_value=root_value,
            variable_values=request_data.variables,
            context_value=context,
            operation_name=request_data.operation_name,
            allowed_operation_types=allowed_operation_types,
            validate_document=False,
        )

    def process_result(
        self, request: Request, result: ExecutionResult, strict: bool = False
    ) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [_masked(error) for error in result.errors]
        return super().process_result(request, result, strict)


def _masked(error: GraphQLError) -> GraphQLError:
    """A resolver's unexpected exception is logged and answered with a generic message: its
    text may name files, tables or hosts."""
    if error.original_error is None or isinstance(error.original_error, GraphQLError):
        return error
    log.error("graphql: %s at %s", type(error.original_error).__name__, error.path, exc_info=error)
    return GraphQLError(
        INTERNAL_MESSAGE, error.nodes, path=error.path, extensions={"code": "INTERNAL"}
    )


def refuse_body(req: Request) -> Response | None:
    """The answer refusing this request's body before GraphQL sees it, or None to go on.
    A body over MAX_BODY_BYTES raises RequestEntityTooLarge (413, from errors.py)."""
    req.max_content_length = MAX_BODY_BYTES
    if req.mimetype != "application/json":
        raise UnsupportedMediaType("Send the request body as application/json.")
    raw = req.get_data(cache=True)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested absurdly deep
        return error_response(400, "invalid_json", "The request body is not valid JSON.")
    if isinstance(body, list):
        return error_response(
            400, "batch_refused", "Batched operations are refused: send one per request."
        )
    if not isinstance(body, dict):
        return error_response(400, "bad_request", "The request body must be a JSON object.")
    return None


def init_app(app: Flask) -> None:
    """Serve the schema at /graphql; introspection only with LOOPMARK_DEBUG."""
    debug = services(app).settings.debug
    view = GalleryGraphQLView.as_view(
        "graphql", schema=build_schema().graphql_schema, introspection=debug
    )
    app.add_url_rule("/graphql", view_func=view)
