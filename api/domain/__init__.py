"""The domain of the guichet unique, one home per noun (``api/domain/<noun>/``): its rules
(``rules.py``, and the modules at this level such as ``holdings``, ``budget``, ``calendar``)
are pure — no database, no HTTP, no I/O — and property-tested; its use cases
(``service.py``) apply them inside the request's transaction through the noun's repository
(``repository.py``: typed queries on its ``tables.py`` models, filtered by the request's
scope, row-level security repeating the boundary); ``schemas.py`` holds the shapes the API
reads and writes, and ``deps.py`` builds the context a router hands to the service. A module
grown too long becomes a package of the same name (``people/service/``,
``people/repository/``). Jobs run outside requests (``api.jobs``) call the same repositories.

Glossary — the users' French words and the names they take in code. Competence, reason and
outcome codes stay French (``rsa``, ``aide_facultative``, ``hors_competence``): they are the
users' own words. The URLs say ``beneficiaries`` (``/v1/beneficiaries``) for the noun the code
calls ``people`` (the package ``api.domain.people``) and ``Beneficiary`` (its table model).

==========================================  ==========================================
French term                                 code name
==========================================  ==========================================
bénéficiaire, usager                        ``beneficiary`` (the noun ``people``)
foyer                                       ``household``
membre du foyer (demandeur, conjoint…)      ``household_member`` (relation code stays French)
organisation, partenaire                    ``organisation``
type d'organisation (CCAS, EPCI, CIAS…)     ``organisation_kind`` (``OrganisationKind``)
territoire (communes couvertes)             ``territory``
commune (code INSEE / COG)                  ``commune`` (INSEE code string)
compétence                                  ``competence``
catalogue des compétences                   ``catalogue``
détenir une compétence (loi / convention)   ``holding`` (source ``law`` / ``convention``)
titulaire légal                             ``legal holder``
convention de délégation                    ``convention``
délégant / délégataire                      ``grantor`` / ``grantee``
catégorie de données                        ``data_category`` (``DataCategory``)
équipe de suivi                             ``care_team``
référent                                    ``referent``
orientation                                 ``orientation``
orienteur / organisme d'accueil             ``issuer`` / ``target``
adressage, référencement                    ``referral``
émetteur / destinataire                     ``sender`` / ``recipient``
fiche de liaison                            ``shared categories`` of a referral
motif (de refus, d'échec…)                  ``reason_code``
résultat                                    ``outcome_code``
délai de réponse                            ``response deadline`` (working days)
jour ouvré / jour férié                     ``working day`` / ``public holiday``
dossier d'aide sociale légale               ``dossier``
prestation (RSA, APA, PCH, ASH, FSL, FAJ)   ``prestation`` (``LEGAL_AID_PRESTATIONS``)
instruction / décision                      ``instruction`` / ``decision``
aide facultative                            ``aid``
règlement des aides facultatives            ``aid rules``
version d'un règlement (date d'effet)       ``aid rules`` version (``valid_from``)
type d'aide, forme (bon, paiement tiers…)   ``aid type``, ``form``
barème de décision (agent, décideur…)       ``decision tiers``, ``required_level``
unité de consommation (échelle INSEE)       ``consumption_units`` (UC)
demande d'aide (instructeur, attributeur)   ``aid request`` (instructor, grantor)
dérogation                                  ``derogation``
bon d'achat numéroté                        ``voucher`` (``voucher_number``)
enveloppe budgétaire                        ``envelope``
commission permanente, procès-verbal        ``commission`` session, ``minutes``
reste à vivre                               ``remaining_income`` (``reste_a_vivre``)
ressources / charges                        ``resources`` / ``charges``
NIR (numéro de sécurité sociale)            ``nir``
nom de naissance / nom d'usage / prénoms    ``birth_name`` / ``usage_name`` / ``first_names``
rapprochement d'identité, doublon           ``identity matching``, ``duplicate``
fusion                                      ``merge``
information / consentement                  ``information notice`` / ``consent``
demande d'accès                             ``access request``
accès d'urgence (bris de glace)             ``break_glass``
journal des accès                           ``access log``
durée de conservation                       ``retention``
ABS (analyse des besoins sociaux)           steering statistics (``stats``)
angles morts                                ``unanswered needs``
==========================================  ==========================================
"""
