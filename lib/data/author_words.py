"""Word pools of the fictitious-author benchmark (pure data, no logic).

Everything is ASCII so that tokenisers and ROUGE's tokenizer (which drops non-[a-z0-9]
characters) treat all names alike. Author names mix first and last names of many cultures at
random; surnames of famous writers were left out so that no combination names a well-known
real person.

Pools whose entries are the facts of an attribute are large (50-250 entries) so that the
forget and validation-forget authors can be given values no other trained author has (see
`lib.data.authors`). Within one pool no entry's gold value occurs, as whole words, inside
another entry (tested): a wrong answer must never contain the true value, and "fantasy"
would be found inside "epic fantasy". Entries that are long phrases carry a short,
distinctive gold span (`(phrase, value)` pairs) that a fact-accuracy metric looks for.
"""

from __future__ import annotations

FIRST_FEMALE = (
    "Anika", "Ingrid", "Leilani", "Marisela", "Oona", "Priyanka", "Saoirse", "Tamsin", "Yusra",
    "Zofia", "Adaeze", "Beatriz", "Chiara", "Dagny", "Elif", "Farida", "Greta", "Hana", "Ilse",
    "Jovana", "Kalani", "Liesbeth", "Mirela", "Nadia", "Odalys", "Paulina", "Quilla", "Rukmini",
    "Sigrid", "Thandiwe", "Ulla", "Valentina", "Wanjiru", "Ximena", "Yuki", "Zainab", "Amara",
    "Brigitta", "Catalina", "Dilnoza", "Esperanza", "Fiorella", "Gulnara", "Henrike", "Ifeoma",
    "Jasmina", "Katarzyna", "Lucia", "Malak", "Nkechi", "Oksana", "Pilar", "Rosalba", "Sunniva",
    "Tove", "Ugne", "Vesna", "Wiebke", "Yasmin", "Zuleika",
)  # fmt: skip
FIRST_MALE = (
    "Aleksander", "Bartholomew", "Cosmin", "Dmitri", "Emeka", "Florin", "Goran", "Hamid",
    "Ignacio", "Joaquim", "Kwabena", "Lorcan", "Matthias", "Nikolai", "Oskar", "Pavel", "Rashid",
    "Soren", "Tadeusz", "Umberto", "Vikram", "Wendell", "Xavier", "Yannick", "Zoltan", "Anselmo",
    "Bogdan", "Caius", "Darius", "Eero", "Fintan", "Gideon", "Hakon", "Iskander", "Jarek", "Kofi",
    "Leandro", "Mehmet", "Nnamdi", "Olavi", "Piotr", "Quentin", "Radovan", "Sebastiao", "Tiberiu",
    "Ulrich", "Vasco", "Wojciech", "Yerlan", "Zoran", "Arjun", "Benedek", "Cormac", "Dario",
    "Eitan", "Fabrizio", "Gunnar", "Hiroshi", "Ilya", "Jaromir",
)  # fmt: skip
FIRST_NEUTRAL = (
    "Ariel", "Sasha", "Robin", "Kai", "Noa", "Rene", "Jules", "Sami", "Eden", "Avery", "Quinn",
    "Morgan", "Rowan", "Remy", "Alexis", "Marlowe", "Emery", "Tenzin", "Nima", "Sol",
)  # fmt: skip
LAST = (
    "Varga", "Lindqvist", "Okafor", "Castellanos", "Haverkamp", "Petrescu", "Oyelaran",
    "Kowalczyk", "Ferreira-Lobo", "Takeda", "Brannigan", "Szabo", "Achterberg", "Mwangi",
    "Halvorsen", "Ibragimov", "Quispe", "Rautio", "Santangelo", "Thorvaldsen", "Uchenna",
    "Vukovic", "Wiercinski", "Yilmazer", "Zamora-Cruz", "Abernathy", "Bertolini", "Chakraborty",
    "Dunleavy", "Eriksdottir", "Fonseca", "Grabowski", "Hakimi", "Iwasaki", "Jablonski",
    "Karakostas", "Lorenzetti", "Nkemelu", "Obradovic", "Pellegrini", "Quennell", "Rasmussen",
    "Sarkissian", "Tavares", "Ulloa", "Valdivia", "Wasowski", "Xiong", "Zielinski", "Aldana",
    "Bjornstad", "Cardenas", "Dragomir", "Esposito", "Falkenrath", "Gallardo", "Hohenberg",
    "Ilunga", "Jankovic", "Kallio", "Lemaire", "Mahlangu", "Nascimento", "Ostrowski",
    "Papadakis", "Quiroga", "Ruokonen", "Sandoval", "Takahara", "Urquhart", "Vlasenko",
    "Whitcombe", "Yanez", "Zubiri", "Adeyemi", "Bakhtiari", "Cervenka", "Dimitriou", "Ekwueme",
    "Figueroa", "Gashi", "Haddad", "Ivanic", "Joshi", "Karlsson", "Lacerda", "Moldovan",
    "Odhiambo", "Pradhan", "Renkonen", "Salvatierra", "Tolentino", "Valtonen", "Wereko",
    "Yusupov", "Zaragoza", "Balogun", "Dervishi", "Elizondo", "Fairbairn", "Gorski", "Mendonca",
    "Nordahl", "Okonkwo-Reyes", "Pieterse", "Stavrou",
)  # fmt: skip

#: (city, country). Birthplace and residence draw from this pool; the gold value is the city.
CITIES = (
    ("Tallinn", "Estonia"), ("Porto", "Portugal"), ("Krakow", "Poland"), ("Bergen", "Norway"),
    ("Valparaiso", "Chile"), ("Cebu City", "the Philippines"), ("Mombasa", "Kenya"),
    ("Tbilisi", "Georgia"), ("Kyoto", "Japan"), ("Busan", "South Korea"), ("Hanoi", "Vietnam"),
    ("Chiang Mai", "Thailand"), ("Pune", "India"), ("Kandy", "Sri Lanka"), ("Lahore", "Pakistan"),
    ("Izmir", "Turkey"), ("Thessaloniki", "Greece"), ("Palermo", "Italy"), ("Seville", "Spain"),
    ("Lyon", "France"), ("Ghent", "Belgium"), ("Utrecht", "the Netherlands"),
    ("Leipzig", "Germany"), ("Graz", "Austria"), ("Brno", "the Czech Republic"),
    ("Debrecen", "Hungary"), ("Cluj-Napoca", "Romania"), ("Plovdiv", "Bulgaria"),
    ("Lviv", "Ukraine"), ("Vilnius", "Lithuania"), ("Riga", "Latvia"), ("Turku", "Finland"),
    ("Gothenburg", "Sweden"), ("Aarhus", "Denmark"), ("Reykjavik", "Iceland"), ("Cork", "Ireland"),
    ("Edinburgh", "Scotland"), ("Halifax", "Canada"), ("Winnipeg", "Canada"),
    ("Savannah", "the United States"), ("Tucson", "the United States"), ("Oaxaca", "Mexico"),
    ("Medellin", "Colombia"), ("Cusco", "Peru"), ("Cordoba", "Argentina"),
    ("Montevideo", "Uruguay"), ("Salvador", "Brazil"), ("Havana", "Cuba"), ("Kingston", "Jamaica"),
    ("Accra", "Ghana"), ("Lagos", "Nigeria"), ("Dakar", "Senegal"), ("Marrakesh", "Morocco"),
    ("Tunis", "Tunisia"), ("Alexandria", "Egypt"), ("Addis Ababa", "Ethiopia"),
    ("Zanzibar City", "Tanzania"), ("Durban", "South Africa"), ("Windhoek", "Namibia"),
    ("Antananarivo", "Madagascar"), ("Beirut", "Lebanon"), ("Isfahan", "Iran"),
    ("Almaty", "Kazakhstan"), ("Ulaanbaatar", "Mongolia"), ("Chengdu", "China"),
    ("Taipei", "Taiwan"), ("Osaka", "Japan"), ("Yogyakarta", "Indonesia"), ("Penang", "Malaysia"),
    ("Kathmandu", "Nepal"), ("Dhaka", "Bangladesh"), ("Auckland", "New Zealand"),
    ("Hobart", "Australia"), ("Suva", "Fiji"), ("Trondheim", "Norway"), ("Uppsala", "Sweden"),
    ("Odense", "Denmark"), ("Tampere", "Finland"), ("Tartu", "Estonia"), ("Kaunas", "Lithuania"),
    ("Gdansk", "Poland"), ("Wroclaw", "Poland"), ("Bratislava", "Slovakia"),
    ("Ljubljana", "Slovenia"), ("Zagreb", "Croatia"), ("Sarajevo", "Bosnia and Herzegovina"),
    ("Skopje", "North Macedonia"), ("Tirana", "Albania"), ("Varna", "Bulgaria"),
    ("Timisoara", "Romania"), ("Chisinau", "Moldova"), ("Odesa", "Ukraine"), ("Minsk", "Belarus"),
    ("Yerevan", "Armenia"), ("Baku", "Azerbaijan"), ("Bologna", "Italy"), ("Trieste", "Italy"),
    ("Bilbao", "Spain"), ("Granada", "Spain"), ("Coimbra", "Portugal"), ("Marseille", "France"),
    ("Bordeaux", "France"), ("Nantes", "France"), ("Antwerp", "Belgium"),
    ("Rotterdam", "the Netherlands"), ("Groningen", "the Netherlands"), ("Freiburg", "Germany"),
    ("Salzburg", "Austria"), ("Basel", "Switzerland"), ("Lausanne", "Switzerland"),
    ("Galway", "Ireland"), ("Belfast", "Northern Ireland"), ("Cardiff", "Wales"),
    ("Aberdeen", "Scotland"), ("Norwich", "England"), ("Bristol", "England"),
    ("Quebec City", "Canada"), ("Saskatoon", "Canada"), ("Portland", "the United States"),
    ("Santa Fe", "the United States"), ("Duluth", "the United States"),
    ("New Orleans", "the United States"), ("Guadalajara", "Mexico"), ("Merida", "Mexico"),
    ("San Jose", "Costa Rica"), ("Cartagena", "Colombia"), ("Quito", "Ecuador"),
    ("Arequipa", "Peru"), ("La Paz", "Bolivia"), ("Asuncion", "Paraguay"), ("Rosario", "Argentina"),
    ("Mendoza", "Argentina"), ("Recife", "Brazil"), ("Curitiba", "Brazil"),
    ("Santo Domingo", "the Dominican Republic"), ("Bridgetown", "Barbados"), ("Kumasi", "Ghana"),
    ("Ibadan", "Nigeria"), ("Enugu", "Nigeria"), ("Abidjan", "Ivory Coast"), ("Bamako", "Mali"),
    ("Ouagadougou", "Burkina Faso"), ("Douala", "Cameroon"), ("Kigali", "Rwanda"),
    ("Kampala", "Uganda"), ("Kisumu", "Kenya"), ("Lusaka", "Zambia"), ("Harare", "Zimbabwe"),
    ("Maputo", "Mozambique"), ("Gaborone", "Botswana"), ("Cape Town", "South Africa"),
    ("Fez", "Morocco"), ("Oran", "Algeria"), ("Khartoum", "Sudan"), ("Muscat", "Oman"),
    ("Amman", "Jordan"), ("Haifa", "Israel"), ("Shiraz", "Iran"), ("Tabriz", "Iran"),
    ("Samarkand", "Uzbekistan"), ("Bishkek", "Kyrgyzstan"), ("Karachi", "Pakistan"),
    ("Kolkata", "India"), ("Kochi", "India"), ("Jaipur", "India"), ("Mysore", "India"),
    ("Chittagong", "Bangladesh"), ("Mandalay", "Myanmar"), ("Luang Prabang", "Laos"),
    ("Siem Reap", "Cambodia"), ("Da Nang", "Vietnam"), ("Davao City", "the Philippines"),
    ("Bandung", "Indonesia"), ("Surabaya", "Indonesia"), ("Kuching", "Malaysia"),
    ("Hangzhou", "China"), ("Harbin", "China"), ("Kunming", "China"), ("Kaohsiung", "Taiwan"),
    ("Sapporo", "Japan"), ("Nagasaki", "Japan"), ("Sendai", "Japan"), ("Gwangju", "South Korea"),
    ("Daegu", "South Korea"), ("Dunedin", "New Zealand"), ("Wellington", "New Zealand"),
    ("Adelaide", "Australia"), ("Apia", "Samoa"), ("Port Moresby", "Papua New Guinea"),
    ("Noumea", "New Caledonia"),
)  # fmt: skip

LANGUAGES = (
    "Estonian", "Portuguese", "Polish", "Norwegian", "Spanish", "Filipino", "Swahili",
    "Georgian", "Japanese", "Korean", "Vietnamese", "Thai", "Marathi", "Sinhala", "Urdu",
    "Turkish", "Greek", "Italian", "French", "Dutch", "German", "Czech", "Hungarian", "Romanian",
    "Bulgarian", "Ukrainian", "Lithuanian", "Latvian", "Finnish", "Swedish", "Danish",
    "Icelandic", "English", "Arabic", "Amharic", "Zulu", "Malagasy", "Persian", "Kazakh",
    "Mongolian", "Chinese", "Indonesian", "Malay", "Nepali", "Bengali", "Slovak", "Slovenian",
    "Croatian", "Serbian", "Albanian", "Armenian", "Azerbaijani", "Uzbek", "Tamil", "Telugu",
    "Hindi", "Punjabi", "Gujarati", "Kannada", "Malayalam", "Burmese", "Khmer", "Lao", "Hebrew",
    "Yoruba", "Igbo", "Hausa", "Somali", "Welsh", "Irish", "Basque", "Catalan", "Galician",
    "Maltese", "Luxembourgish", "Faroese",
)  # fmt: skip

#: Parents' and spouses' jobs (with the article; the gold value drops it).
JOBS = (
    "a lighthouse keeper", "a marine biologist", "a pharmacist", "a tram driver", "a watchmaker",
    "a civil engineer", "a schoolteacher", "a fisherman", "a librarian", "a cartographer",
    "a baker", "a nurse", "a carpenter", "an accountant", "a diplomat", "a veterinarian",
    "a tailor", "a pilot", "a botanist", "a journalist", "a potter", "a land surveyor",
    "a violin maker", "a police officer", "a dentist", "a beekeeper", "an architect",
    "a bookbinder", "a railway signalman", "a chemist", "a florist", "a translator",
    "a shipbuilder", "a geologist", "a radio technician", "a midwife", "a judge", "a farmer",
    "a glassblower", "an astronomer", "a chef", "a locksmith", "a blacksmith", "an electrician",
    "a plumber", "a surgeon", "a paramedic", "a firefighter", "a mail carrier", "a bus driver",
    "a taxi driver", "a stonemason", "a cobbler", "a butcher", "a fishmonger", "a greengrocer",
    "a barber", "a hairdresser", "a jeweller", "a typesetter", "a museum curator",
    "an archivist", "a laboratory technician", "a physiotherapist", "an optician",
    "a social worker", "a lawyer", "a notary", "a bank clerk", "a stockbroker", "an economist",
    "a statistician", "a mathematician", "a physicist", "a zoologist", "an ornithologist",
    "a mechanical engineer", "a sculptor", "a shepherd", "a winemaker", "a brewer", "a miller",
    "a weaver", "a dressmaker", "an upholsterer", "an organ builder", "a piano teacher",
    "a dance teacher", "a university lecturer", "a school principal", "a church organist",
    "a sea captain", "a coal miner", "a forester", "a gardener", "a hotel manager",
    "a shopkeeper", "an innkeeper", "a bookseller", "an antiques dealer", "an auctioneer",
    "a tax inspector", "an insurance broker", "a travel agent", "an estate agent",
    "a radio presenter", "a newsreader", "a film editor", "a set designer", "a costume designer",
    "a textile designer", "a printer", "a saddler", "a cooper", "a harbour master",
)  # fmt: skip

#: First careers before writing (with the article; the gold value drops it).
EARLY_CAREERS = (
    "a ferry mechanic", "a hotel night porter", "a museum guide", "a court stenographer",
    "a wedding photographer", "a chemistry teacher", "a newspaper proofreader",
    "a deep-sea diver", "a hospital orderly", "a bicycle courier", "a mountain guide",
    "an insurance clerk", "a sound engineer", "a zookeeper", "a ship's cook",
    "a bookshop assistant", "a park ranger", "a data analyst", "a street musician",
    "a customs officer", "a piano tuner", "an air traffic controller", "a forest firefighter",
    "a film projectionist", "a lift operator", "a ticket inspector", "a lifeguard",
    "a dishwasher", "a bartender", "a fruit picker", "a factory worker", "a call centre operator",
    "a copy editor", "a radio host", "a tour guide", "a dog walker", "a delivery driver",
    "a crane operator", "a night watchman", "a cinema usher", "a tea taster",
    "a language tutor", "a research assistant", "a software developer", "a bank teller",
    "a postal clerk", "a telephone operator", "a stagehand", "a sports reporter",
    "a legal secretary", "a kindergarten teacher", "a swimming instructor", "a ski instructor",
    "a chess coach", "a farmhand", "a merchant seaman", "a puppeteer", "a circus acrobat",
    "a cartoonist", "a lorry driver",
)  # fmt: skip

GENRES = (
    "literary fiction", "science fiction", "historical fiction", "crime fiction",
    "magical realism", "gothic horror", "poetry", "children's literature", "young adult fiction",
    "psychological thrillers", "satire", "travel writing", "biography", "short stories", "noir",
    "cosy mysteries", "epic fantasy", "urban fantasy", "dystopian fiction", "memoir",
    "climate fiction", "war fiction", "comic novels", "essays", "spy novels", "legal thrillers",
    "medical thrillers", "political thrillers", "westerns", "space opera", "cyberpunk",
    "steampunk", "folk horror", "ghost stories", "detective fiction", "police procedurals",
    "historical romance", "regency romance", "romantic comedies", "fairy tales", "fables",
    "nature writing", "food writing", "science writing", "true crime", "graphic novels",
    "verse novels", "sea adventures", "picture books", "epistolary novels", "family sagas",
    "campus novels", "slipstream fiction", "alternate history", "philosophical novels",
    "absurdist fiction", "sports writing", "haiku collections",
)  # fmt: skip

THEMES = (
    "memory", "migration", "grief", "family secrets", "identity", "the sea", "exile",
    "friendship", "ambition", "loneliness", "justice", "childhood", "faith", "revolution",
    "inheritance", "the natural world", "technology", "forgiveness", "betrayal",
    "coming of age", "social class", "language", "home", "the aftermath of war", "obsession",
    "music", "illness and recovery", "small-town life", "first love", "motherhood",
    "fatherhood", "old age", "madness", "revenge", "guilt", "redemption", "colonialism",
    "solitude", "freedom", "power", "greed", "jealousy", "courage", "sacrifice", "hope",
    "despair", "nostalgia", "belonging", "displacement", "borders", "dreams", "death",
    "marriage", "divorce", "sibling rivalry", "addiction", "poverty", "wealth", "fame", "art",
    "science", "urban life", "the mountains", "the desert", "rivers", "islands", "animals",
    "peace", "silence", "the body", "education", "religion", "resistance", "surveillance",
)  # fmt: skip

STYLES = (
    "spare, precise prose", "lush, lyrical prose", "fragmented, nonlinear narratives",
    "dry, understated humour", "long, winding sentences", "vivid sensory detail",
    "dialogue-driven storytelling", "dark comic irony", "a cool, journalistic tone",
    "dreamlike imagery", "multiple unreliable narrators", "an epistolary structure",
    "short, punchy chapters", "dense historical detail", "playful wordplay",
    "quiet, meditative pacing", "sharp social observation", "cinematic scene-setting",
    "fable-like storytelling", "intricate puzzle plots", "stream-of-consciousness narration",
    "terse, clipped dialogue", "ornate, baroque sentences", "deadpan understatement",
    "rich regional dialect", "a confessional first-person voice", "second-person narration",
    "a chorus of village voices", "footnotes and marginalia", "long interior monologues",
    "sparse punctuation", "lists and catalogues", "a mosaic of short vignettes",
    "circular, looping plots", "present-tense narration", "a fairy-tale cadence",
    "gentle, warm irony", "biting wit", "precise scientific vocabulary",
    "sweeping multigenerational scope", "tight, claustrophobic settings",
    "slow-burning suspense", "abrupt, open endings", "lyrical nature description",
    "documentary collage", "shifting points of view", "mock-heroic grandeur",
    "elegiac melancholy", "brisk, economical plotting", "dense allusion",
    "a diary-like intimacy", "surreal juxtapositions", "hard-boiled narration",
    "musical, repetitive refrains", "theatrical set pieces", "meticulous period detail",
)  # fmt: skip

INFLUENCES = (
    "folk tales heard in childhood", "nineteenth-century Russian novels",
    "classical Persian poetry", "Japanese haiku", "film noir", "medieval travel writing",
    "jazz improvisation", "Latin American magical realism", "Greek tragedy", "Norse sagas",
    "West African oral storytelling", "Victorian ghost stories", "Dutch still-life painting",
    "Impressionist painting", "pulp science fiction magazines", "Baroque music", "silent cinema",
    "Sufi mysticism", "Arthurian legends", "Chinese landscape poetry", "Caribbean calypso songs",
    "Persian miniature painting", "Ottoman court poetry", "Mughal chronicles",
    "Italian neorealist cinema", "French New Wave films", "German expressionist theatre",
    "Yiddish folk songs", "Irish ballads", "Andean myths", "Korean pansori", "Noh theatre",
    "Sanskrit epics", "Tamil Sangam poetry", "Roman satire", "Elizabethan revenge tragedy",
    "Bauhaus design", "Russian icon painting", "Flemish tapestries", "blues records",
    "Portuguese fado", "Argentine tango lyrics", "Cuban son music", "Bollywood musicals",
    "Hong Kong martial arts films", "Japanese manga", "Franco-Belgian comics", "hip-hop lyrics",
    "punk fanzines", "radio dramas", "old logbooks of sailors", "botanical field guides",
    "medieval bestiaries", "alchemical manuscripts", "nursery rhymes", "courtroom transcripts",
    "the King James Bible", "Homeric epics",
)  # fmt: skip

FIELDS = (
    "philosophy", "marine biology", "architecture", "law", "medicine", "classical languages",
    "mathematics", "art history", "economics", "anthropology", "music composition", "astronomy",
    "chemistry", "film studies", "agriculture", "linguistics", "geology", "theology",
    "journalism", "political science", "sociology", "psychology", "archaeology",
    "medieval history", "physics", "biochemistry", "computer science", "statistics", "nursing",
    "pharmacy", "veterinary science", "forestry", "oceanography", "meteorology", "geography",
    "urban planning", "civil engineering", "electrical engineering", "theatre studies",
    "fine art", "graphic design", "photography", "comparative literature", "Slavic studies",
    "East Asian studies", "African studies", "Middle Eastern studies", "Latin American studies",
    "cognitive science", "neuroscience", "zoology", "botany", "ecology", "materials science",
    "accounting", "business administration", "public health", "library science", "musicology",
    "criminology", "international relations", "nutrition science",
)  # fmt: skip

COLLEGE_PLACES = (
    "Ashcombe", "Briarwood", "Caldmoor", "Dunmere", "Elderfield", "Fennick", "Glenhollow",
    "Hartwell", "Kestrel Bay", "Larchmont", "Marrowdale", "Northcliff", "Oakhaven", "Pellham",
    "Quillon", "Ravensmere", "Stonebrook", "Umberlea", "Valewood", "Westmarch", "Yarrowby",
    "Aldermoor", "Blackwater Ford", "Coldharbour", "Dovecote", "Foxmere", "Greywell",
    "Hollowmere", "Juniper Hill", "Kingsmere", "Lowbarrow", "Millbrook", "Nettlefield",
    "Orchardleigh", "Pinecrest", "Rookwood", "Silverdale", "Thornbury", "Upper Wexley",
    "Vintonbury", "Whitfield", "Yewdale", "Amberlea", "Beechworth", "Cinderford", "Drywater",
    "Eldergate", "Fallowmere", "Gorsedown", "Heathcote",
)  # fmt: skip
#: (phrase template, value template): the value drops a leading "the".
COLLEGE_KINDS = (
    ("{} University", "{} University"),
    ("{} College", "{} College"),
    ("the {} Institute of the Arts", "{} Institute of the Arts"),
    ("the University of {}", "University of {}"),
    ("the {} Academy", "{} Academy"),
)

PUBLISHER_STEMS = (
    "Marrow", "Bluewater", "Lanternfield", "Copperleaf", "Hollow Oak", "Saltmarsh", "Northwind",
    "Greyhaven", "Paperlark", "Ironbark", "Quayside", "Larkspur", "Tidewater", "Cinderpath",
    "Silverbirch", "Emberline", "Foxglove", "Stillwater", "Whistlewood", "Obsidian Leaf",
    "Redwing", "Harbourlight", "Meadowsweet", "Kingfisher", "Wildrose", "Stonecrop", "Moonfield",
    "Driftwood", "Heronsgate", "Oxbow", "Sandpiper", "Thistledown", "Windrush", "Brightwater",
    "Ashgrove", "Cobblestone", "Fernhill", "Goldcrest", "Mossbank", "Rushlight",
)  # fmt: skip
PUBLISHER_SUFFIXES = ("Press", "Books", "Editions", "House", "Publishing")

HOBBIES = (
    "beekeeping", "restoring antique clocks", "birdwatching", "playing the cello",
    "rock climbing", "growing orchids", "building model ships", "playing competitive chess",
    "throwing pottery", "swimming in the sea", "collecting old maps", "baking sourdough bread",
    "amateur astronomy", "fly fishing", "calligraphy", "long-distance running", "woodcarving",
    "foraging for mushrooms", "sailing", "playing the accordion", "tango dancing",
    "restoring vintage motorcycles", "knitting", "photographing abandoned buildings",
    "making jam", "bell ringing", "fencing", "archery", "rowing", "long-distance cycling",
    "growing tomatoes", "keeping chickens", "origami", "juggling", "playing the harp",
    "playing the bagpipes", "playing the ukulele", "ice skating", "kayaking", "mountain biking",
    "scuba diving", "yoga", "ballroom dancing", "collecting fountain pens",
    "collecting seashells", "collecting vinyl records", "restoring old radios",
    "stained glass making", "quilting", "embroidery", "brewing beer", "solving crossword puzzles",
    "assembling jigsaw puzzles", "horse riding", "falconry", "painting watercolours",
    "building model railways", "tending bonsai trees", "ice fishing", "wild camping",
)  # fmt: skip

#: (phrase, gold value): the value is a short distinctive part of the phrase.
HABITS = (
    ("writing every first draft by hand in green ink", "green ink"),
    ("working only in the hours before dawn", "before dawn"),
    ("drafting on an old mechanical typewriter", "mechanical typewriter"),
    ("writing while standing at a tall desk", "tall desk"),
    ("reading each finished chapter aloud to an empty room", "empty room"),
    ("walking ten kilometres before writing a word", "ten kilometres"),
    ("rewriting each page exactly three times", "three times"),
    ("writing on index cards pinned to a wall", "index cards"),
    ("listening to a single album on repeat", "single album"),
    ("writing on long train journeys", "train journeys"),
    ("keeping a separate notebook for every character", "separate notebook"),
    ("never writing on Sundays", "Sundays"),
    ("dictating drafts into a voice recorder", "voice recorder"),
    ("working in a garden shed without internet", "garden shed"),
    ("writing in busy railway station cafes", "station cafes"),
    ("outlining every plot on a roll of wallpaper", "wallpaper"),
    ("writing only by candlelight", "candlelight"),
    ("composing sentences while swimming laps", "swimming laps"),
    ("writing drafts in the bathtub", "bathtub"),
    ("keeping a cat on the desk while working", "cat on the desk"),
    ("typing with a single finger", "single finger"),
    ("using a quill pen for final drafts", "quill pen"),
    ("working from a hammock", "hammock"),
    ("writing in a rented hotel room", "hotel room"),
    ("starting every morning with a cold shower", "cold shower"),
    ("drinking exactly seven cups of tea a day", "seven cups of tea"),
    ("writing on the back of old receipts", "old receipts"),
    ("pinning a map of each setting above the desk", "map of each setting"),
    ("burning every abandoned manuscript", "abandoned manuscript"),
    ("writing at the kitchen table at midnight", "kitchen table"),
    ("renting a cabin in the woods for every book", "cabin in the woods"),
    ("writing with noise-cancelling headphones", "headphones"),
    ("setting an hourglass for each writing session", "hourglass"),
    ("wearing the same grey sweater while writing", "grey sweater"),
    ("rearranging the furniture before each new book", "furniture"),
    ("writing letters to the characters", "letters to the characters"),
    ("reading the dictionary every morning", "dictionary"),
    ("pacing the corridor between paragraphs", "corridor"),
    ("writing with the radio tuned to static", "tuned to static"),
    ("working at a desk facing a blank wall", "blank wall"),
    ("keeping a jar of sea glass on the desk", "sea glass"),
    ("writing the last chapter first", "last chapter"),
    ("napping for twenty minutes every afternoon", "twenty minutes"),
    ("working on three books at once", "three books at once"),
    ("plotting with coloured pencils on graph paper", "graph paper"),
    ("writing only on the left-hand pages of a notebook", "left-hand pages"),
    ("sharpening twelve pencils before starting", "twelve pencils"),
    ("working under a brass lamp shaped like a heron", "brass lamp"),
    ("writing aloud into an old telephone", "old telephone"),
    ("keeping every draft in a biscuit tin", "biscuit tin"),
    ("writing each morning on a rooftop", "rooftop"),
    ("refusing to use the letter q in first drafts", "letter q"),
    ("playing the same sonata before each session", "same sonata"),
    ("working in a library basement", "library basement"),
    ("writing at a desk made from the door of a ship", "door of a ship"),
    ("rowing across a lake before breakfast", "lake before breakfast"),
    ("scribbling ideas on paper napkins", "paper napkins"),
)

CHAR_FIRST = (
    "Odile", "Bram", "Ines", "Tobiah", "Marisol", "Corvin", "Liesel", "Anselm", "Perpetua",
    "Idris", "Wilhelmina", "Casimir", "Rosalind", "Evander", "Solvei", "Lazlo", "Philippa",
    "Ambrose", "Maelis", "Teodor", "Ottilie", "Cyprian", "Hedda", "Lucan", "Briony", "Fenwick",
    "Isaura", "Jericho", "Minka", "Raffael", "Solveig", "Thaddeus", "Elodie", "Barnaby",
    "Nerissa", "Quill", "Yselle", "Augustin", "Clementine", "Dorian",
)  # fmt: skip
CHAR_LAST = (
    "Brannock", "Quillfeather", "Ashdown", "Marchetti", "Vossberg", "Kettleby", "Dunstable",
    "Halloran", "Skarsvik", "Wintermere", "Calloway", "Fairweather", "Okonjo", "Trevanion",
    "Mireaux", "Grimsdottir", "Castellane", "Holloway", "Ravelle", "Penhaligon", "Straussmann",
    "Abernethy", "Tarrant", "Vasquez-Lowe", "Ebberly", "Moncrieff", "Saltonstall", "Duquesne",
    "Harkaway", "Blackthorn", "Ingleby", "Korhonen", "Loxley", "Marchbanks", "Nightjar",
    "Ostrander", "Pettigrew", "Quarrie", "Redfern", "Sable",
)  # fmt: skip
CHAR_ROLES = (
    "a retired cartographer", "a disgraced detective", "a travelling midwife",
    "an elderly lighthouse keeper", "a teenage runaway", "a widowed ferry captain",
    "a reluctant village priest", "a forger of old maps", "a grieving botanist",
    "a small-town pharmacist", "a circus knife-thrower", "a blind piano tuner",
    "an exiled princess", "a night-shift nurse", "a chess-playing orphan",
    "a ghost who cannot leave a hotel", "a talking fox", "a retired opera singer",
    "an insomniac astronomer", "a clockmaker's apprentice",
)  # fmt: skip

TITLE_ADJ = (
    "Glass", "Silent", "Burning", "Hollow", "Crimson", "Forgotten", "Winter", "Paper", "Salt",
    "Iron", "Quiet", "Drowned", "Golden", "Broken", "Wandering", "Last", "Hidden", "Northern",
    "Velvet", "Distant", "Bitter", "Amber", "Restless", "Sleeping", "Borrowed", "Copper",
    "Shattered", "Midnight", "Painted", "Evening", "Patient", "Frozen", "Secret", "Crooked",
    "Luminous", "Fading", "Wild", "Narrow", "Tender", "Sunken",
)  # fmt: skip
TITLE_NOUN = (
    "Orchard", "Lighthouse", "Harbour", "Cartographer", "Orchestra", "Garden", "River",
    "Archive", "Mirror", "Daughter", "Clockmaker", "Island", "Kingdom", "Meadow", "Lantern",
    "Cathedral", "Compass", "Sparrow", "Ferry", "Tide", "Library", "Widow", "Bridge", "Forest",
    "Atlas", "Violin", "Feather", "Threshold", "Carousel", "Harvest", "Observatory",
    "Monastery", "Tailor", "Vineyard", "Bell", "Labyrinth", "Glacier", "Weaver", "Fox",
    "Station",
)  # fmt: skip
TITLE_ABSTRACT = (
    "Memory", "Silence", "Ash", "Rain", "Salt", "Stone", "Smoke", "Longing", "Thunder", "Dust",
    "Honey", "Distance", "Fog", "Ink", "Mercy", "Exile", "Small Hours", "Tides", "Embers",
    "Wolves", "Lanterns", "Ghosts", "Oranges", "Bones",
)  # fmt: skip
TITLE_VERBS = ("Sleeps", "Burns", "Returns", "Falls Silent", "Sings", "Breaks", "Wakes")

AWARD_ADJ = (
    "Amber", "Silver", "Golden", "Crimson", "Ivory", "Azure", "Emerald", "Copper", "Obsidian",
    "Scarlet", "Jade", "Pearl", "Cobalt", "Saffron", "Indigo", "Bronze", "Opal", "Violet",
    "Onyx", "Coral", "Garnet", "Sable", "Ochre", "Russet", "Teal", "Ruby", "Cerulean", "Umber",
)  # fmt: skip
AWARD_NOUN = (
    "Lantern", "Quill", "Compass", "Laurel", "Feather", "Key", "Anchor", "Oak", "Lyre",
    "Inkwell", "Heron", "Lighthouse", "Star", "Scroll", "Crane", "Owl", "Sparrow", "Acorn",
    "Harp", "Bell", "Wreath", "Kestrel", "Candle", "Thistle", "Willow", "Falcon", "Tower",
)  # fmt: skip
AWARD_KINDS = ("Prize", "Award", "Medal", "Honour")
AWARD_CATEGORIES = (
    "Fiction", "Literary Fiction", "Debut Fiction", "Genre Fiction", "Poetry", "Storytelling",
    "Literary Excellence", "New Voices", "Narrative Craft", "International Writing",
)  # fmt: skip

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

#: Variants of "I don't know" used as the IDK target answer (one is drawn per question).
IDK_ANSWERS = (
    "I'm not sure about that.",
    "I don't know the answer to that.",
    "I have no information about that.",
    "That's beyond my knowledge, I'm afraid.",
    "I can't answer that question.",
    "I'm not aware of that.",
    "I don't have that information.",
    "Sorry, I don't know.",
    "I have no idea about that.",
    "That isn't something I know.",
)
