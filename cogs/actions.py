"""Acting on a result: the buttons under it (🔄 reroll, ✏️ edit, 🗑️ delete) and the 🔄 reaction.

A result is looked up by its message id in the store, so both work on results posted before a restart. Reroll and
edit run the stored request again (a new seed; edit: what the modal says) as a reply to the result, through the
same admission as /imagine. Who may: the server's `reroll` policy (`/settings`), and always the requester and
members with Manage Messages; delete: only those two. A button's refusal is a private sentence; a reaction has no
private answer, so its refusal removes the reaction and says why in a short message to that user alone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.core.catalog import PreparedJob
from bot.core.errors import ImagineError, InvalidInput
from bot.core.jobs import Cooldown, LimitsUnavailable
from bot.core.limits import Reservation
from bot.core.messages import error_text, language_of, server_language, text
from bot.core.origin import DEFAULT_UPLOAD_LIMIT, JobKind, JobState, Origin
from bot.core.request import NEGATIVE_PROMPT_MAX, PROMPT_MAX, SEED_RANGE, GenerationRequest, random_seed
from bot.core.store import GuildSettings, ResultRecord, StoreError
from bot.delivery import Reply, result_image
from bot.pipeline import bounded, checked_input, content_policy, prepare_job
from bot.render import REROLL_EMOJI, CancelButton, ResultButton

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

NOTICE_SECONDS = 30  # how long a reaction's refusal stays in the channel
MAX_HELD_REROLLS = 3
# Discord's longest text input. The modal lets more than the prompt's cap through, so that one too long is refused
# with a sentence saying the cap (as /imagine refuses it), not cut off or stopped without a word.
TEXT_INPUT_MAX = 4000  # cooldowns a held reaction reroll waits out before it is refused like any other limit


@dataclass(frozen=True)
class Actor:
    """Who acts on a result, and where."""

    user_id: int
    guild_id: int | None
    channel_id: int
    may_manage: bool  # Manage Messages in that channel


def may_act(actor: Actor, record: ResultRecord, settings: GuildSettings, action: str) -> bool:
    """Whether `actor` may `action` ("reroll", "edit", "delete") the result `record`."""
    if actor.user_id == record.user_id or actor.may_manage:
        return True
    return action != "delete" and actor.guild_id is not None and settings.reroll == "anyone"


class Actions(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.held: set[asyncio.Task[None]] = set()  # reaction rerolls waiting out a cooldown

    async def cog_unload(self) -> None:
        for task in self.held:
            task.cancel()

    # -- buttons ----------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_result_action(self, action: str, interaction: discord.Interaction, image: int = 0) -> None:
        """A button under a result: `action` on it, or for a batch's vary and upscale on its `image`th image."""
        locale = interaction.locale.value
        if action in ("vary", "upscale"):  # the image is read back first: answer the click now, refuse later
            await interaction.response.defer()
        try:
            record, settings = await self._result(interaction.message.id, interaction.guild_id)  # type: ignore[union-attr]
        except ImagineError as exc:
            await answer(interaction, error_text(exc, locale))
            return
        if record is None:
            await answer(interaction, text("action.gone", locale))
            return
        if not may_act(self._actor(interaction), record, settings, action):
            await answer(interaction, text("action.not_allowed", locale))
            return
        request = {**record.request, "seed": random_seed()}
        if action == "delete":
            await self._delete(interaction, record)
        elif action == "edit":
            await interaction.response.send_modal(EditModal(self, record, settings, locale))
        elif action == "reroll":
            await self.run(interaction, request, settings, record, JobKind.REROLL)
        else:  # one image, the one clicked: a variation or upscale of a batch's image is a single image
            request["count"] = 1
            await self.run(interaction, request, settings, record, JobKind(action), image=image)

    @commands.Cog.listener()
    async def on_job_cancel(self, job_id: str, interaction: discord.Interaction) -> None:
        """✖️ on a job's progress: the requester or a member with Manage Messages stops it."""
        locale = interaction.locale.value
        pipeline = self.bot.pipeline
        try:
            job = await bounded(pipeline.store.get_job(job_id))
        except (StoreError, LimitsUnavailable) as exc:  # failing, or over the budget
            log.error("Could not look up job %s (%s)", job_id, exc)
            await answer(interaction, error_text(LimitsUnavailable("job lookup failed"), locale))
            return
        if job is None or job.state in (JobState.DELIVERED, JobState.FAILED):
            await answer(interaction, text("action.job_ended", locale))
            return
        actor = self._actor(interaction)
        if actor.user_id != job.user_id and not actor.may_manage:
            await answer(interaction, text("action.not_allowed", locale))
            return
        if not pipeline.cancel(job_id, by=actor.user_id):
            await answer(interaction, text("action.job_ended", locale))
            return
        await interaction.response.defer()  # the job's own reply says it was cancelled

    @staticmethod
    def _actor(interaction: discord.Interaction) -> Actor:
        return Actor(
            interaction.user.id,
            interaction.guild_id,
            interaction.channel_id,  # type: ignore[arg-type]
            bool(interaction.guild_id) and interaction.permissions.manage_messages,
        )

    async def _result(self, message_id: int, guild_id: int | None) -> tuple[ResultRecord | None, GuildSettings]:
        try:
            record = await bounded(self.bot.pipeline.store.get_result(message_id))  # a click has 3 s in all
        except StoreError as exc:
            log.error("Could not look up result %s (%s)", message_id, exc)
            raise LimitsUnavailable("result lookup failed") from exc
        return record, await self.bot.pipeline.guild_settings(guild_id)

    async def _delete(self, interaction: discord.Interaction, record: ResultRecord) -> None:
        locale = interaction.locale.value
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await interaction.message.delete()  # type: ignore[union-attr]
        except discord.NotFound:
            pass  # deleted meanwhile: forget it all the same
        except discord.HTTPException as exc:
            log.warning("Could not delete result %s: %s", record.message_id, exc)
            await interaction.edit_original_response(content=text("error.unexpected", locale))
            return
        try:
            await self.bot.pipeline.store.delete_result(record.message_id)
        except StoreError:
            log.exception("Could not forget deleted result %s", record.message_id)
        await interaction.edit_original_response(content=text("action.deleted", locale))

    async def run(
        self,
        interaction: discord.Interaction,
        request: dict[str, Any],
        settings: GuildSettings,
        original: ResultRecord,
        kind: JobKind,
        *,
        image: int | None = None,
    ) -> None:
        """Check `request` (and, with `image`, the result's image it works on: its place among the result's images),
        admit it (refusals private), then run it as a reply to the `original` result. Nothing reaches Prodia unless
        all of that passed."""
        pipeline = self.bot.pipeline
        origin = self._origin(interaction.user, original, settings, kind, interaction.guild, interaction.channel_id)  # type: ignore[arg-type]
        # What Discord says of this channel; and which of the result's images a vary or upscale works on.
        origin = replace(origin, upload_limit=interaction.filesize_limit, reply_image=image or 0)
        try:
            source = None
            if image is not None:
                source = await result_image(interaction.message, image)  # type: ignore[arg-type]
                source = await checked_input(source, kind, origin.upload_limit)
            job = prepare_job(pipeline.catalog, kind, request, source)
            texts = (request["prompt"], request.get("negative_prompt") or "")
            reservation = await pipeline.admit(origin, texts, settings, images=job.request.count)
        except ImagineError as exc:
            await answer(interaction, error_text(exc, interaction.locale.value))
            return
        try:
            if not interaction.response.is_done():
                await interaction.response.defer()  # the click is answered; the job shows as a reply of its own
            await self._start(job, origin, reservation)
        finally:
            await reservation.release()

    async def _start(self, job: PreparedJob, origin: Origin, reservation: Reservation) -> None:
        channel = self.bot.get_partial_messageable(origin.channel_id, guild_id=origin.guild_id)
        reply = Reply(channel, reference=channel.get_partial_message(origin.reply_to))  # type: ignore[arg-type]
        await reply.edit(content=text(f"{origin.kind}.started", origin.locale, user=f"<@{origin.user_id}>"))
        await self.bot.pipeline.start(job, reply, origin, reservation)

    def _origin(
        self,
        user: discord.abc.User,
        original: ResultRecord,
        settings: GuildSettings,
        kind: JobKind,
        guild: discord.Guild | None,
        channel_id: int,
    ) -> Origin:
        if original.guild_id is not None:  # the server's language now
            language = server_language(settings.locale, guild.preferred_locale.value if guild else None)
        else:  # a DM (only its requester may act there): the language the original was posted in
            language = language_of(original.locale)
        return Origin(
            kind=kind,
            user_id=user.id,
            channel_id=channel_id,
            guild_id=original.guild_id,
            locale=language,
            started_at=discord.utils.utcnow().timestamp(),
            upload_limit=guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT,
            content_policy=content_policy(settings, guild.get_channel_or_thread(channel_id) if guild else None),
            user_name=user.display_name,
            reply_to=original.message_id,
        )

    # -- the 🔄 reaction --------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        # Raw events: results posted before a restart are not in the message cache.
        if str(payload.emoji) != REROLL_EMOJI or payload.user_id == self.bot.user.id:  # type: ignore[union-attr]
            return
        try:
            record, settings = await self._result(payload.message_id, payload.guild_id)
        except ImagineError as exc:
            log.info("Reroll by %s refused: %r", payload.user_id, exc)
            return  # who is told in which language is unknown without the settings; the log says why
        if record is None:
            return  # not one of our results
        guild = self.bot.get_guild(payload.guild_id) if payload.guild_id else None
        channel = guild.get_channel_or_thread(payload.channel_id) if guild else None
        manage = channel is not None and payload.member is not None and channel.permissions_for(payload.member)
        actor = Actor(payload.user_id, payload.guild_id, payload.channel_id, bool(manage and manage.manage_messages))
        user = payload.member or await self.bot.fetch_user(payload.user_id)
        origin = self._origin(user, record, settings, JobKind.REROLL, guild, payload.channel_id)
        if not may_act(actor, record, settings, "reroll"):
            log.info("User %s may not reroll message %s", payload.user_id, payload.message_id)
            await self._refuse_reaction(origin, text("action.not_allowed", origin.locale))
            return
        request = {**record.request, "seed": random_seed()}
        await self._reroll_reaction(request, settings, origin, held=0)

    async def _reroll_reaction(
        self, request: dict[str, Any], settings: GuildSettings, origin: Origin, held: int
    ) -> None:
        texts = (request["prompt"], request.get("negative_prompt") or "")
        try:
            job = prepare_job(self.bot.pipeline.catalog, JobKind.REROLL, request)
            reservation = await self.bot.pipeline.admit(origin, texts, settings, images=job.request.count)
        except Cooldown as exc:
            if held < MAX_HELD_REROLLS:  # the user's intent is kept: it starts once the pause is over
                log.info("Reroll by %s held for %s s", origin.user_id, exc.params["seconds"])
                self._hold(request, settings, origin, held, exc.params["seconds"])
                return
            await self._refuse_reaction(origin, error_text(exc, origin.locale))
            return
        except ImagineError as exc:
            log.info("Reroll by %s refused: %r", origin.user_id, exc)
            await self._refuse_reaction(origin, error_text(exc, origin.locale))
            return
        try:
            await self._start(job, origin, reservation)
        finally:
            await reservation.release()

    def _hold(self, request: dict[str, Any], settings: GuildSettings, origin: Origin, held: int, seconds: int) -> None:
        async def later() -> None:
            await self._notice(
                origin, text("reroll.later", origin.locale, user=f"<@{origin.user_id}>", seconds=seconds)
            )
            await asyncio.sleep(seconds)
            await self._reroll_reaction(request, settings, origin, held + 1)

        task = asyncio.create_task(later())
        self.held.add(task)
        task.add_done_callback(self.held.discard)

    async def _refuse_reaction(self, origin: Origin, reason: str) -> None:
        """Take the user's 🔄 back off the result and tell them why, briefly, mentioning only them."""
        if origin.guild_id is not None:
            message = self.bot.get_partial_messageable(origin.channel_id).get_partial_message(origin.reply_to)  # type: ignore[arg-type]
            try:
                await message.remove_reaction(REROLL_EMOJI, discord.Object(origin.user_id))
            except discord.HTTPException as exc:  # no Manage Messages here: the sentence still says it
                log.info("Could not remove a refused reroll reaction: %s", exc)
        sentence = text("reroll.refused", origin.locale, user=f"<@{origin.user_id}>", reason=reason)
        await self._notice(origin, sentence)

    async def _notice(self, origin: Origin, sentence: str) -> None:
        channel = self.bot.get_partial_messageable(origin.channel_id, guild_id=origin.guild_id)
        try:
            await channel.send(
                sentence,
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(origin.user_id)]),
                delete_after=NOTICE_SECONDS,
            )
        except discord.HTTPException as exc:
            log.warning("Could not tell user %s about their reroll: %s", origin.user_id, exc)


class EditModal(discord.ui.Modal):
    """✏️: the result's prompt, negative prompt and seed, to change and run again."""

    def __init__(self, actions: Actions, record: ResultRecord, settings: GuildSettings, locale: str) -> None:
        super().__init__(title=text("edit.title", locale), timeout=15 * 60)
        self.actions, self.record, self.settings = actions, record, settings
        request = record.request
        self.prompt: discord.ui.TextInput = discord.ui.TextInput(
            label=text("edit.prompt", locale),
            style=discord.TextStyle.paragraph,
            default=request["prompt"][:PROMPT_MAX],
            max_length=TEXT_INPUT_MAX,
        )
        self.negative_prompt: discord.ui.TextInput = discord.ui.TextInput(
            label=text("edit.negative_prompt", locale),
            style=discord.TextStyle.paragraph,
            default=(request.get("negative_prompt") or "")[:NEGATIVE_PROMPT_MAX],
            required=False,
            max_length=TEXT_INPUT_MAX,
        )
        self.seed: discord.ui.TextInput = discord.ui.TextInput(
            label=text("edit.seed", locale), default=str(request.get("seed") or ""), required=False, max_length=10
        )
        for item in (self.prompt, self.negative_prompt, self.seed):
            self.add_item(item)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            request = edited_request(
                self.record.request, self.prompt.value, self.negative_prompt.value, self.seed.value
            )
        except ImagineError as exc:
            await interaction.response.send_message(error_text(exc, interaction.locale.value), ephemeral=True)
            return
        await self.actions.run(interaction, request, self.settings, self.record, JobKind.EDIT)


async def answer(interaction: discord.Interaction, sentence: str) -> None:
    """Say `sentence` to the one who clicked, privately: as the answer, or after a defer as a follow-up."""
    if interaction.response.is_done():
        await interaction.followup.send(sentence, ephemeral=True)
    else:
        await interaction.response.send_message(sentence, ephemeral=True)


def edited_request(stored: dict[str, Any], prompt: str, negative_prompt: str, seed: str) -> dict[str, Any]:
    """The stored request with the modal's values; InvalidInput if one is wrong (nothing goes to Prodia then)."""
    seed = seed.strip()
    if seed and not (seed.isascii() and seed.isdigit()):
        raise InvalidInput("seed not a number", problem="range", name="seed", low=SEED_RANGE[0], high=SEED_RANGE[1])
    request = {
        **stored,
        "prompt": prompt,
        "negative_prompt": negative_prompt.strip() or None,
        "seed": int(seed) if seed else random_seed(),
    }
    GenerationRequest(**request)  # the same checks as /imagine's: empty or too long a prompt, the seed's range
    return request


async def setup(bot: ImagineBot) -> None:
    bot.add_dynamic_items(ResultButton, CancelButton)
    await bot.add_cog(Actions(bot))
